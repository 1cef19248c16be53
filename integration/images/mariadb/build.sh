#!/usr/bin/env bash
# build.sh — the test image ckpt-test-mariadb:latest: MariaDB from Debian
# bookworm's packages (mariadb-server, mariadb-client with mariadb-slap and
# mariadb-check), made with debootstrap since nothing can be pulled here, and
# entry.sh as its entry point. The root file system is cached as a tar in
# CKPT_TEST_IMAGE_CACHE (default /var/cache/ckpt-test) and rebuilt only when
# this script changes; the image is imported again when entry.sh changes.
#
# Run by make test before the integration suite (TestMariaDB needs the
# image); the VM test copies the image into its guest.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${CKPT_TEST_IMAGE_CACHE:-/var/cache/ckpt-test}
. "$here/../../../scripts/mirror.sh"
mirror=$(debian_mirror)
ref=ckpt-test-mariadb:latest
stamp=$(cat "$0" | sha256sum | cut -c1-16)
tag=$(cat "$0" "$here/entry.sh" | sha256sum | cut -c1-16)
say() { echo "mariadb-image: $*" >&2; }

[ "$(id -u)" = 0 ] || { say "run as root"; exit 1; }
if [ "$(docker image inspect -f '{{index .Config.Labels "io.ckpt.test.stamp"}}' "$ref" 2>/dev/null)" = "$tag" ]; then
	say "$ref is up to date"
	exit 0
fi
tarball=$cache/mariadb-rootfs.tar
if [ ! -f "$tarball" ] || [ "$(cat "$cache/mariadb.stamp" 2>/dev/null)" != "$stamp" ]; then
	command -v debootstrap >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
	mkdir -p "$cache"
	root=$(mktemp -d "$cache/mariadb-root.XXXXXX")
	trap 'rm -rf "$root"' EXIT
	say "debootstrap bookworm with mariadb-server into $root (about 2 minutes)"
	debootstrap --variant=minbase --include=mariadb-server,mariadb-client bookworm "$root" "$mirror" \
		>"$cache/mariadb-debootstrap.log" 2>&1 || { tail -n 30 "$cache/mariadb-debootstrap.log" >&2; exit 1; }
	chroot "$root" apt-get clean
	# An empty data directory: the entry point initialises the volume.
	rm -rf "$root"/var/lib/mysql/* "$root"/var/lib/apt/lists/* "$root"/usr/share/doc "$root"/usr/share/man "$root"/usr/share/locale
	tar -C "$root" -cf "$tarball.tmp" .
	mv "$tarball.tmp" "$tarball"
	echo "$stamp" >"$cache/mariadb.stamp"
fi
say "importing $ref"
{
	# The root file system, then entry.sh appended to the same archive.
	cp "$tarball" "$cache/mariadb-image.tar"
	tar -C "$here" --owner=0 --group=0 --mode=0755 --transform 's,^entry.sh$,usr/local/bin/ckpt-test-entry,' \
		-rf "$cache/mariadb-image.tar" entry.sh
}
docker import -c 'ENTRYPOINT ["/usr/local/bin/ckpt-test-entry"]' -c 'EXPOSE 3306' \
	-c "LABEL io.ckpt.test.stamp=$tag" "$cache/mariadb-image.tar" "$ref" >/dev/null
rm -f "$cache/mariadb-image.tar"
say "done: $ref ($(docker image inspect -f '{{.Size}}' "$ref") bytes)"
