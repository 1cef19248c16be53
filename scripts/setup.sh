#!/usr/bin/env bash
# setup.sh — make this host ready for ckpt. Idempotent: each step checks first
# and does nothing when it is already right.
#   1. the Docker engine (Debian's docker.io) when dockerd is missing, and
#      docker-compose (for the tests);
#   2. a CRIU that works on this kernel (>= 4.2 on kernels >= 6.16): Debian's
#      package where it passes `criu check`, else CRIU 4.2.1 built from
#      Debian's source tarball with its checksum checked;
#   3. the engine running with experimental features on. An engine that already
#      runs without them is not reconfigured or restarted unless
#      CKPT_SETUP_RESTART_ENGINE=1 is set (a restart stops its containers);
#   4. what building ckpt needs: make, git, curl and unzip from Debian, and
#      Go (go.mod's version) when the go on PATH is missing or older: the
#      official toolchain from the Go module proxy, checksum checked, in
#      /usr/local/go (scripts/go.sh). Hosts that only run a ckpt built
#      elsewhere (CKPT_SETUP_BUILD_TOOLS=0, as in the Vagrant guest) skip it.
set -euo pipefail

CRIU_VERSION=4.2.1
CRIU_DEB_VERSION=4.2.1-1
CRIU_SHA256=29ec0ee09e296479fe7048c80980e8ef1d0684d0b0204c2b101dfea19f6725b9
DAEMON_JSON=/etc/docker/daemon.json
here=$(cd "$(dirname "$0")" && pwd)
caller_path=$PATH
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export DEBIAN_FRONTEND=noninteractive

say() { echo "setup: $*" >&2; }
die() { echo "setup: error: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (sudo $0)"

apt_updated=
apt_install() {
	if [ -z "$apt_updated" ]; then apt-get update -qq || say "apt-get update reported errors; trying to install anyway"; apt_updated=1; fi
	apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# version_ge A B: A >= B for dotted versions.
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

kernel=$(uname -r | sed 's/[^0-9.].*//')
criu_min=3.11
if version_ge "$kernel" 6.16; then criu_min=4.2; fi

# 1. engine
if ! command -v dockerd >/dev/null; then
	say "installing the Docker engine (docker.io)"
	apt_install docker.io iptables ca-certificates
fi

# The integration tests drive a compose project with Debian's docker-compose,
# freeze a small ext4 file system (mkfs.ext4, fsfreeze) and verify the
# systemd units ckpt writes with systemd-analyze, and push and pull
# through Debian's docker-registry. Hosts that
# only run ckpt (CKPT_SETUP_TEST_TOOLS=0, as in the Vagrant guest) skip them.
if [ "${CKPT_SETUP_TEST_TOOLS:-1}" = 1 ]; then
	if ! command -v docker-compose >/dev/null; then
		say "installing docker-compose (used by the integration tests)"
		apt_install docker-compose
	fi
	if ! command -v docker-registry >/dev/null; then
		say "installing docker-registry (distribution 2.8: the registry the push and pull tests use)"
		apt_install docker-registry
	fi
	if ! command -v mkfs.ext4 >/dev/null || ! command -v fsfreeze >/dev/null; then
		say "installing e2fsprogs and util-linux (a freezable file system, used by the tests)"
		apt_install e2fsprogs util-linux
	fi
	if ! command -v systemd-analyze >/dev/null; then
		say "installing systemd (systemd-analyze, used by the tests)"
		apt_install systemd
	fi
fi

# 2. CRIU
criu_ok() {
	command -v criu >/dev/null || return 1
	local v
	v=$(criu --version 2>/dev/null | sed -n 's/^Version: *//p')
	[ -n "$v" ] && version_ge "$v" "$criu_min" || return 1
	criu check >/dev/null 2>&1
}
# Debian's own CRIU first: it passes `criu check` on older kernels (6.1).
if ! criu_ok && ! command -v criu >/dev/null; then
	say "trying Debian's criu package"
	apt_install criu || true
	hash -r
fi
if ! criu_ok; then
	say "CRIU missing, older than $criu_min (needed by kernel $kernel) or failing 'criu check': building CRIU $CRIU_VERSION"
	apt_install build-essential pkg-config libbsd-dev libcap-dev libgnutls28-dev libnet1-dev \
		libnftables-dev libnl-3-dev libprotobuf-c-dev libprotobuf-dev protobuf-c-compiler \
		protobuf-compiler uuid-dev python3-protobuf dpkg-dev xz-utils
	work=$(mktemp -d /tmp/ckpt-criu.XXXXXX)
	trap 'rm -rf "$work"; rm -f /etc/apt/sources.list.d/ckpt-criu-src.sources' EXIT
	. "$here/mirror.sh"
	mirror=$(debian_mirror) || die "cannot tell which Debian archive apt uses"
	cat >/etc/apt/sources.list.d/ckpt-criu-src.sources <<-SRC
	Types: deb-src
	URIs: $mirror
	Suites: sid
	Components: main
	Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
	SRC
	apt-get update -qq -o Dir::Etc::sourcelist=/etc/apt/sources.list.d/ckpt-criu-src.sources \
		-o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0
	# apt-get source exits 100 because the debian.tar.xz is not served; the
	# upstream tarball is all that is needed.
	(cd "$work" && apt-get source -qq --download-only "criu=$CRIU_DEB_VERSION" >/dev/null 2>&1 || true)
	tarball="$work/criu_$CRIU_VERSION.orig.tar.xz"
	[ -f "$tarball" ] || die "could not download criu_$CRIU_VERSION.orig.tar.xz from Debian's sources"
	echo "$CRIU_SHA256  $tarball" | sha256sum -c --quiet - || die "criu_$CRIU_VERSION.orig.tar.xz: sha256 mismatch"
	tar -xf "$tarball" -C "$work"
	make -C "$work/criu-$CRIU_VERSION" -j"$(nproc)" criu >"$work/build.log" 2>&1 || { tail -n 40 "$work/build.log" >&2; die "building CRIU failed"; }
	make -C "$work/criu-$CRIU_VERSION" install-criu PREFIX=/usr/local >/dev/null
	hash -r
	criu_ok || { criu check >&2 || true; die "CRIU $CRIU_VERSION was installed but 'criu check' fails"; }
	say "installed $(criu --version | head -n1) in /usr/local/sbin"
fi

# 3. engine running with experimental features
experimental_on() { [ "$(docker version --format '{{.Server.Experimental}}' 2>/dev/null)" = true ]; }
enable_experimental() {
	mkdir -p "$(dirname "$DAEMON_JSON")"
	if [ -s "$DAEMON_JSON" ]; then
		python3 - "$DAEMON_JSON" <<-'PY'
		import json, sys
		p = sys.argv[1]
		d = json.load(open(p))
		d["experimental"] = True
		open(p + ".ckpt-new", "w").write(json.dumps(d, indent=2) + "\n")
		PY
		mv "$DAEMON_JSON.ckpt-new" "$DAEMON_JSON"
	else
		echo '{"experimental": true}' >"$DAEMON_JSON"
	fi
}
if "$here/engine.sh" status; then
	if ! experimental_on; then
		if [ "${CKPT_SETUP_RESTART_ENGINE:-}" != 1 ]; then
			die "the running engine has experimental features off; set \"experimental\": true in $DAEMON_JSON and restart dockerd, or rerun with CKPT_SETUP_RESTART_ENGINE=1 to let this script do it (a restart stops running containers)"
		fi
		say "enabling experimental features in $DAEMON_JSON and RESTARTING the running engine"
		enable_experimental
		"$here/engine.sh" restart
	fi
else
	grep -qs '"experimental": *true' "$DAEMON_JSON" || { say "enabling experimental features in $DAEMON_JSON"; enable_experimental; }
	"$here/engine.sh" start
fi
experimental_on || die "the engine still reports experimental features off"

# 4. build tools
if [ "${CKPT_SETUP_BUILD_TOOLS:-1}" = 1 ]; then
	missing=()
	for tool in make git curl unzip; do
		command -v "$tool" >/dev/null || missing+=("$tool")
	done
	[ -s /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
	if [ ${#missing[@]} -gt 0 ]; then
		say "installing ${missing[*]} (to build ckpt)"
		apt_install "${missing[@]}"
	fi
	# The go the Makefile uses: the caller's PATH decides, as there.
	PATH="$caller_path:$PATH" "$here/go.sh" install
fi
say "ready: engine $(docker version --format '{{.Server.Version}}'), $(criu --version | head -n1)"
