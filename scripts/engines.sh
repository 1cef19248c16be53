#!/usr/bin/env bash
# engines.sh — other Docker engines beside the host's, for the engine matrix.
#
#   engines.sh list                 the engines of the table below
#   engines.sh build NAME           its root file system (debootstrap, cached)
#   engines.sh start NAME           its dockerd, in a mount namespace of its own
#   engines.sh stop NAME
#   engines.sh exec NAME CMD...     CMD inside that mount namespace
#   engines.sh test NAME [REGEXP]   the integration suite against it
#
# Each engine is Debian's docker.io of one suite, debootstrapped into
# CKPT_ENGINES_CACHE/NAME (default /var/cache/ckpt-engines) and rebuilt when
# its row of the table or the host's CRIU changes. dockerd runs on this host's
# kernel inside `unshare -m -n`: a mount namespace with a pivot_root into
# that root (a chroot is not enough: containerd cannot find its mounts, and
# CRIU fails with "The root task has another root than mntns"), and a network
# namespace of its own, so that its bridge, iptables rules and published
# ports never meet the host engine's (Docker 28 deletes a docker0 it does not
# use). ckpt and the tests run inside both namespaces (exec, test): ckpt reads
# the engine's root directory, and the tests reach containers through ports
# published on that namespace's 127.0.0.1. The suites' CRIU when it is new
# enough for this kernel, else the host's (scripts/setup.sh).
#
# Adding an engine is one line of the table: name, Debian suite, packages.
# The podman row is not an engine of the matrix (make engine-matrix runs
# ENGINES): it is sid's podman beside a dockerd, for bench/perf.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
cache=${CKPT_ENGINES_CACHE:-/var/cache/ckpt-engines}
. "$here/mirror.sh"
export PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

table='
trixie  trixie  docker.io,docker-cli,containerd,runc,criu,iptables,iproute2,ca-certificates,procps,openssh-client,docker-compose,e2fsprogs
sid     sid     docker.io,docker-cli,containerd,runc,criu,iptables,iproute2,ca-certificates,procps,openssh-client,docker-compose,e2fsprogs
podman  sid     docker.io,docker-cli,containerd,runc,criu,iptables,iproute2,ca-certificates,procps,podman,nftables
'

say() { echo "engines: $*" >&2; }
die() { say "error: $*"; exit 1; }

row() { awk -v n="$1" '$1 == n { print $2, $3 }' <<<"$table"; }
root_of() { echo "$cache/$1/root"; }
pid_of() { cat "$(root_of "$1")/run/docker.pid" 2>/dev/null; }

build() {
	local name=$1 suite pkgs root stamp
	read -r suite pkgs <<<"$(row "$name")"
	[ -n "$suite" ] || die "no engine $name (engines.sh list)"
	root=$(root_of "$name")
	stamp=$( (row "$name"; command -v criu >/dev/null && sha256sum "$(command -v criu)") | sha256sum | cut -c1-16)
	if [ -f "$cache/$name/stamp" ] && [ "$(cat "$cache/$name/stamp")" = "$stamp" ]; then
		return 0
	fi
	command -v debootstrap >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
	command -v criu >/dev/null || die "no CRIU on the host: run scripts/setup.sh first"
	stop "$name" 2>/dev/null || true
	rm -rf "$cache/$name"
	mkdir -p "$cache/$name"
	say "debootstrap $suite into $root (about a minute)"
	debootstrap --variant=minbase --include="$pkgs" "$suite" "$root" "$(debian_mirror)" >"$cache/$name/debootstrap.log" 2>&1 ||
		{ tail -n 30 "$cache/$name/debootstrap.log" >&2; die "debootstrap $suite failed"; }
	# The suite's CRIU when it is new enough for this kernel's sockets (sid's
	# 4.2.1), else the host's in its place (runc finds criu on PATH).
	v=$(chroot "$root" /usr/sbin/criu --version 2>/dev/null | sed -n 's/^Version: *//p')
	if [ "$(printf '%s\n4.2\n' "$v" | sort -V | head -n1)" != 4.2 ]; then
		say "$name: its CRIU ${v:-?} cannot dump sockets on kernels >= 6.16; using the host's"
		install -D -m 0755 "$(command -v criu)" "$root/usr/local/sbin/criu"
		mv "$root/usr/sbin/criu" "$root/usr/sbin/criu.debian"
	fi
	cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
	chroot "$root" apt-get clean
	echo "$stamp" >"$cache/$name/stamp"
	say "$name: $(chroot "$root" dpkg-query -W -f '${Version}' docker.io) (containerd $(chroot "$root" dpkg-query -W -f '${Version}' containerd), runc $(chroot "$root" dpkg-query -W -f '${Version}' runc))"
}

# in NAME CMD...: run CMD in the engine's mount namespace, without the
# host's DOCKER_HOST.
in_ns() {
	local name=$1 pid
	shift
	pid=$(pid_of "$name") && kill -0 "$pid" 2>/dev/null || die "engine $name is not running (engines.sh start $name)"
	env -u DOCKER_HOST nsenter -t "$pid" -m -n -- "$@"
}

start() {
	local name=$1 root
	root=$(root_of "$name")
	[ -d "$root" ] || build "$name"
	if pid=$(pid_of "$name") && kill -0 "$pid" 2>/dev/null; then
		return 0
	fi
	mkdir -p "$root/etc/docker"
	echo '{"experimental": true}' >"$root/etc/docker/daemon.json"
	rm -f "$root/run/docker.pid"
	mkdir -p "$root/var/log"
	say "starting $name's dockerd (log: $root/var/log/ckpt-dockerd.log)"
	mkdir -p "$root/opt/ckpt"
	cp "$repo/scripts/engine.sh" "$root/opt/ckpt/engine.sh"
	unshare -m -n --propagation private sh -c '
		set -e
		root=$1
		ip link set lo up
		mount --bind "$root" "$root"
		mount -t proc proc "$root/proc"
		mount -t sysfs sysfs "$root/sys"   # this network namespace'"'"'s devices
		mount --rbind /sys/fs/cgroup "$root/sys/fs/cgroup"
		mount --rbind /dev "$root/dev"
		cd "$root"
		mkdir -p .oldroot
		pivot_root . .oldroot
		umount -l /.oldroot
		cd /
		exec env -u DOCKER_HOST /opt/ckpt/engine.sh start
	' sh "$root" || die "$name's dockerd did not start: $(tail -n 20 "$root/var/log/ckpt-dockerd.log" 2>/dev/null)"
	say "$name: Docker $(in_ns "$name" docker version --format '{{.Server.Version}}') running (pid $(pid_of "$name"))"
}

stop() {
	local name=$1 pid
	pid=$(pid_of "$name") && kill -0 "$pid" 2>/dev/null || return 0
	# Containers first, so nothing of theirs outlives the engine.
	in_ns "$name" sh -c 'ids=$(docker ps -aq); [ -z "$ids" ] || docker rm -f $ids >/dev/null' || true
	in_ns "$name" /opt/ckpt/engine.sh stop
}

# test NAME [REGEXP]: build the suite and its binaries static, put them into
# the engine's root, load the test images, and run the suite there.
suite() {
	local name=$1 run=${2:-.} root dest
	start "$name"
	root=$(root_of "$name")
	dest=$root/opt/ckpt
	mkdir -p "$dest/bin" "$dest/scripts"
	(cd "$repo" && CGO_ENABLED=0 go build -o "$dest/bin/ckpt" ./cmd/ckpt &&
		CGO_ENABLED=0 go build -tags ckptfault -o "$dest/bin/ckpt-fault" ./cmd/ckpt &&
		CGO_ENABLED=0 go build -o "$dest/bin/testapp" ./internal/testapp &&
		CGO_ENABLED=0 go test -c -o "$dest/integration.test" ./integration)
	cp "$repo/scripts/engine.sh" "$repo/scripts/demo.sh" "$dest/scripts/"
	# The registry of the push and pull tests: the host's (Debian's
	# docker-registry, linked against libc only, which every suite has).
	install -m 0755 "$(command -v docker-registry)" "$dest/bin/docker-registry"
	if docker image inspect ckpt-test-mariadb:latest >/dev/null 2>&1; then
		docker save ckpt-test-mariadb:latest | in_ns "$name" docker load >/dev/null
	fi
	say "$name: the integration suite (Docker $(in_ns "$name" docker version --format '{{.Server.Version}}'))"
	in_ns "$name" env CKPT_INTEGRATION=1 CKPT_TEST_DISALLOW_SKIP=1 CKPT_TEST_BIN_DIR=/opt/ckpt/bin \
		CKPT_TEST_REPO=/opt/ckpt CKPT_DOCKERD_LOG=/var/log/ckpt-dockerd.log PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		sh -c 'cd /opt/ckpt && ./integration.test -test.count=1 -test.timeout 30m ${CKPT_ENGINES_VERBOSE:+-test.v} -test.run "$1" -test.skip "^TestRegistryAnotherEngine\$"' sh "$run"
}

case "${1:-}" in
list) awk 'NF { print $1, $2 }' <<<"$table" ;;
build) build "${2:?name}" ;;
start) start "${2:?name}" ;;
stop) stop "${2:?name}" ;;
exec) n=${2:?name}; shift 2; in_ns "$n" "$@" ;;
test) suite "${2:?name}" "${3:-.}" ;;
*) sed -n '2,9p' "$0" >&2; exit 2 ;;
esac
