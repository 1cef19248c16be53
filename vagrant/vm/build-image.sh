#!/usr/bin/env bash
# build-image.sh — a Debian bookworm guest for the VM power-cycle test, built
# from Debian's packages with debootstrap: kernel, systemd, openssh-server,
# sudo, docker.io, criu and the rest installed at build time, so the guest
# needs no network of its own. docker-compose is there for the integration
# suite, which the VM test also runs inside the guest. Cached in CKPT_VM_CACHE (default
# /var/cache/ckpt-vm) and rebuilt only when this script changes.
#
# Output in the cache: disk.img (ext4, raw), vmlinuz, initrd.img, id_ed25519
# (the key that logs in as root).
set -euo pipefail
cache=${CKPT_VM_CACHE:-/var/cache/ckpt-vm}
. "$(dirname "$0")/../../scripts/mirror.sh"
mirror=$(debian_mirror)
stamp=$(sha256sum "$0" | cut -c1-16)

say() { echo "vm-image: $*" >&2; }
if [ -f "$cache/disk.img" ] && [ "$(cat "$cache/stamp" 2>/dev/null)" = "$stamp" ]; then
	say "cached in $cache"
	exit 0
fi
[ "$(id -u)" = 0 ] || { say "run as root"; exit 1; }
for tool in debootstrap mkfs.ext4; do
	command -v "$tool" >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap e2fsprogs >/dev/null; break; }
done

mkdir -p "$cache"
rm -rf "$cache/rootfs" "$cache/disk.img" "$cache/stamp"
root=$cache/rootfs
say "debootstrap bookworm into $root (about 2 minutes)"
debootstrap --variant=minbase \
	--include=linux-image-amd64,systemd-sysv,systemd-resolved,openssh-server,sudo,docker.io,docker-compose,criu,apparmor,iproute2,udev,dbus,kmod,e2fsprogs,curl,ca-certificates,python3 \
	bookworm "$root" "$mirror" >"$cache/debootstrap.log" 2>&1 || { tail -n 30 "$cache/debootstrap.log" >&2; exit 1; }

say "configuring the guest"
echo ckpt-vm >"$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 ckpt-vm\n' >"$root/etc/hosts"
printf '/dev/vda / ext4 rw,relatime 0 1\n' >"$root/etc/fstab"
cat >"$root/etc/systemd/network/20-wired.network" <<'NET'
[Match]
Name=en*

[Network]
DHCP=yes
NET
mkdir -p "$root/etc/docker" "$root/var/log/journal" "$root/root/.ssh"
echo '{"experimental": true}' >"$root/etc/docker/daemon.json"
chroot "$root" systemctl enable systemd-networkd systemd-resolved ssh docker >/dev/null 2>&1
rm -f "$cache/id_ed25519" "$cache/id_ed25519.pub"
ssh-keygen -q -t ed25519 -N '' -C ckpt-vm-test -f "$cache/id_ed25519"
cp "$cache/id_ed25519.pub" "$root/root/.ssh/authorized_keys"
chmod 700 "$root/root/.ssh"; chmod 600 "$root/root/.ssh/authorized_keys"
cp "$root"/boot/vmlinuz-* "$cache/vmlinuz"
cp "$root"/boot/initrd.img-* "$cache/initrd.img"
chroot "$root" apt-get clean

say "making disk.img"
mkfs.ext4 -q -L ckpt-vm -d "$root" "$cache/disk.img" 6G
rm -rf "$root"
echo "$stamp" >"$cache/stamp"
say "done: $cache/disk.img"
