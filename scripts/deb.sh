#!/usr/bin/env bash
# deb.sh — builds ckpt's Debian package with dpkg-deb alone (make deb runs
# it): the static binary given, as /usr/bin/ckpt; its containerd runtime link
# /usr/bin/containerd-shim-ckpt-v2 and docker CLI plugin link
# /usr/libexec/docker/cli-plugins/docker-ckpt; the man page, the bash, zsh and
# fish completions and the hooks' systemd units (not enabled), all generated
# by the binary itself (ckpt gen-docs); README.md and docs/ under
# /usr/share/doc/ckpt with a generated copyright file and changelog.gz. The
# control file, maintainer scripts and lintian overrides are in packaging/.
# Files get the commit's time, so that the same commit builds the same
# package.
#
# Usage: scripts/deb.sh BINARY VERSION OUTPUT.deb
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}

say() { echo "deb: $*" >&2; }
die() { echo "deb: error: $*" >&2; exit 1; }

[ $# = 3 ] || die "usage: $0 BINARY VERSION OUTPUT.deb (make deb runs it)"
bin=$1 version=$2 out=$3
[ -x "$bin" ] || die "$bin is not an executable: build it first (make deb does)"
dpkg --validate-version "$version" 2>/dev/null || die "$version is not a valid Debian version (scripts/version.sh prints one)"
command -v dpkg-deb >/dev/null || die "dpkg-deb is missing (apt-get install dpkg)"

# Maintainer: Debian's usual DEBFULLNAME and DEBEMAIL, else the author of
# the commit built.
if [ -n "${DEBFULLNAME:-}" ] && [ -n "${DEBEMAIL:-}" ]; then
	maintainer="$DEBFULLNAME <$DEBEMAIL>"
else
	maintainer=$(git log -1 --format='%an <%ae>' 2>/dev/null) ||
		die "no git history to take the maintainer from: set DEBFULLNAME and DEBEMAIL"
fi
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
commit=$(git rev-parse --short=7 HEAD 2>/dev/null || echo unknown)

work=$(mktemp -d /tmp/ckpt-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
umask 022
root=$work/root
doc=$root/usr/share/doc/ckpt

# The binary and its two other names.
install -D -m 0755 "$bin" "$root/usr/bin/ckpt"
ln -s ckpt "$root/usr/bin/containerd-shim-ckpt-v2"
install -d "$root/usr/libexec/docker/cli-plugins"
ln -s ../../../bin/ckpt "$root/usr/libexec/docker/cli-plugins/docker-ckpt"

# What the binary generates about itself.
"$bin" gen-docs --dir "$work/gen" --units-for /usr/bin/ckpt >/dev/null
install -D -m 0644 "$work/gen/man/man8/ckpt.8" "$root/usr/share/man/man8/ckpt.8"
gzip -9n "$root/usr/share/man/man8/ckpt.8"
ln -s ckpt.8.gz "$root/usr/share/man/man8/containerd-shim-ckpt-v2.8.gz"
install -D -m 0644 "$work/gen/completion/ckpt.bash" "$root/usr/share/bash-completion/completions/ckpt"
install -D -m 0644 "$work/gen/completion/_ckpt" "$root/usr/share/zsh/vendor-completions/_ckpt"
install -D -m 0644 "$work/gen/completion/ckpt.fish" "$root/usr/share/fish/vendor_completions.d/ckpt.fish"
for unit in ckpt-shutdown.service ckpt-boot.service; do
	install -D -m 0644 "$work/gen/systemd/$unit" "$root/usr/lib/systemd/system/$unit"
done

# Documentation: compressed above 4 kB, as dh_compress does (Debian
# policy 12.3); the copyright file never is.
install -D -m 0644 README.md "$doc/README.md"
install -d "$doc/docs"
install -m 0644 docs/*.md "$doc/docs/"
find "$doc" -type f -size +4k -exec gzip -9n {} +
GO=$GO packaging/copyright.sh >"$doc/copyright"
# A native package (packaging/ is part of ckpt's source): changelog.gz.
cat >"$doc/changelog" <<EOF
ckpt ($version) unstable; urgency=medium

  * Built with make deb from commit $commit of https://github.com/ckpt-dev/ckpt.
    What changed: git log in ckpt's source.

 -- $maintainer  $(date -u -R -d "@$SOURCE_DATE_EPOCH")
EOF
gzip -9n "$doc/changelog"
install -D -m 0644 packaging/lintian-overrides "$root/usr/share/lintian/overrides/ckpt"

# Control files.
install -d "$root/DEBIAN"
install -m 0755 packaging/postinst packaging/prerm packaging/postrm "$root/DEBIAN/"
(cd "$root" && find usr -type f | LC_ALL=C sort | xargs md5sum) >"$root/DEBIAN/md5sums"
size=$(du -sk --apparent-size --exclude=DEBIAN "$root" | cut -f1)
sed -e "s|@VERSION@|$version|" -e "s|@MAINTAINER@|$maintainer|" -e "s|@INSTALLED_SIZE@|$size|" \
	packaging/control >"$root/DEBIAN/control"
chmod 0644 "$root/DEBIAN/md5sums" "$root/DEBIAN/control"

find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
mkdir -p "$(dirname "$out")"
dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
say "built $out ($version)"
