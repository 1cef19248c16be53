#!/usr/bin/env bash
# test.sh — the VM power-cycle test. It boots a real Debian bookworm guest
# (built by build-image.sh, cached) under QEMU with software emulation (TCG:
# KVM does not work on this machine kind), provisions it with
# vagrant/provision.sh exactly as Vagrant would, starts a container with
# in-memory state and a volume, powers the guest off with systemctl poweroff
# — a real shutdown, in which systemd must run ckpt's shutdown hook while the
# engine is still up — boots it again, and checks that the boot hook brought
# the same process back with its volume. The guest is reached over SSH
# forwarded on 127.0.0.1 only; the container through a port published on
# the guest's 127.0.0.1. Then Vagrant's destroy and up, the core of the
# integration suite inside the guest, and the Debian package (make deb)
# installed with apt-get in a fresh guest, where ckpt doctor, a save and
# resume, and the hooks on and off are checked.
#
# Needs root on the host, and the host's engine (make setup) to build the
# test image. Run by make vm-test, and so by make test.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
cache=${CKPT_VM_CACHE:-/var/cache/ckpt-vm}
port=${CKPT_VM_SSH_PORT:-2222}
work=$(mktemp -d /var/tmp/ckpt-vm-test.XXXXXX)
qemu_pid=
t_start=$(date +%s)

say() { printf '[vm-test %4ss] %s\n' "$(($(date +%s) - t_start))" "$*" >&2; }
fail() {
	say "FAIL: $*"
	if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then
		say "the guest's journal for the hook units and the engine:"
		g journalctl --no-pager -o short-precise -u ckpt-shutdown -u ckpt-boot -u docker -b -1 2>/dev/null | tail -n 60 >&2 || true
		g journalctl --no-pager -o short-precise -u ckpt-shutdown -u ckpt-boot -u docker -b 0 2>/dev/null | tail -n 60 >&2 || true
	fi
	say "last lines of the serial console:"
	tail -n 40 "$work/serial.log" >&2 2>/dev/null || true
	echo "vm-test: 0 passed, 1 failed"
	exit 1
}
cleanup() {
	if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then
		kill "$qemu_pid" 2>/dev/null || true
		sleep 1
		kill -9 "$qemu_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

# Host tools, from Debian's packages.
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86 qemu-utils)
command -v qemu-img >/dev/null || need+=(qemu-utils)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v ssh >/dev/null || need+=(openssh-client)
if [ ${#need[@]} -gt 0 ]; then
	say "installing ${need[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

vagrant/vm/build-image.sh
key=$cache/id_ed25519
ssh_opts=(-i "$key" -p "$port" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=5 -o BatchMode=yes)
g() { ssh "${ssh_opts[@]}" root@127.0.0.1 "$@"; }

# A copy-on-write disk over the cached image: every run starts clean.
qemu-img create -q -f qcow2 -b "$cache/disk.img" -F raw "$work/disk.qcow2"

boot() {
	: >"$work/serial.log"
	qemu-system-x86_64 -accel tcg -cpu max -m 3072 -smp 2 \
		-kernel "$cache/vmlinuz" -initrd "$cache/initrd.img" \
		-append "root=/dev/vda rw console=ttyS0 systemd.journald.forward_to_console=0" \
		-drive "file=$work/disk.qcow2,format=qcow2,if=virtio" \
		-nic "user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:$port-:22" \
		-display none -serial "file:$work/serial.log" -no-reboot &
	qemu_pid=$!
	local deadline=$(($(date +%s) + 300))
	until g true 2>/dev/null; do
		kill -0 "$qemu_pid" 2>/dev/null || fail "QEMU exited during boot"
		[ "$(date +%s)" -lt "$deadline" ] || fail "no SSH within 300 s"
		sleep 2
	done
}

# poweroff_guest powers the guest off and waits for QEMU to exit.
poweroff_guest() {
	g systemctl poweroff || true
	for _ in $(seq 1 300); do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 1; done
	kill -0 "$qemu_pid" 2>/dev/null && fail "the guest did not power off within 300 s"
	wait "$qemu_pid" 2>/dev/null || true
	qemu_pid=
}

# state prints the test app's /state from inside the guest.
state() { g curl -fsS --max-time 5 http://127.0.0.1:8080/state; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

say "building ckpt and the test image on the host"
CGO_ENABLED=0 go build -o "$work/src/bin/ckpt" ./cmd/ckpt
CGO_ENABLED=0 go build -o "$work/app/app" ./internal/testapp
cp "$work/app/app" "$work/src/bin/testapp"
# The registry of the push and pull tests (CKPT_VM_SUITE_RUN=. runs them).
if command -v docker-registry >/dev/null; then install -m 0755 "$(command -v docker-registry)" "$work/src/bin/"; fi
CGO_ENABLED=0 go test -c -o "$work/src/integration.test" ./integration
tar -C "$work/app" -c app | docker import -c 'ENTRYPOINT ["/app"]' -c 'EXPOSE 8080' - ckpt-vm-testapp:latest >/dev/null
docker save ckpt-vm-testapp:latest >"$work/image.tar"
docker rmi ckpt-vm-testapp:latest >/dev/null
mkdir -p "$work/src/scripts" "$work/src/vagrant"
cp scripts/setup.sh scripts/engine.sh "$work/src/scripts/"
cp vagrant/*.sh vagrant/policy.yaml "$work/src/vagrant/"
if [ "${CKPT_VM_PACKAGE:-1}" = 1 ]; then
	say "building the Debian package (make deb)"
	make --no-print-directory deb >"$work/deb.log" 2>&1 || { cat "$work/deb.log" >&2; fail "make deb failed"; }
	deb=$(ls -t bin/ckpt_*_amd64.deb | head -n1)
	say "built $deb"
fi

say "booting the guest (TCG)"
t_boot=$(date +%s)
boot
say "SSH after $(($(date +%s) - t_boot)) s; guest kernel $(g uname -r)"

say "provisioning with vagrant/provision.sh (the synced folder is copied to /vagrant)"
tar -C "$work/src" -c . | g 'mkdir -p /vagrant && tar -C /vagrant -x'
g 'CKPT_SRC=/vagrant bash /vagrant/vagrant/provision.sh' >"$work/provision.log" 2>&1 || { cat "$work/provision.log" >&2; fail "provisioning failed"; }
tail -n 5 "$work/provision.log" >&2
g systemctl is-active ckpt-shutdown.service >/dev/null || fail "ckpt-shutdown.service is not active after provisioning"
g systemctl is-enabled ckpt-boot.service >/dev/null || fail "ckpt-boot.service is not enabled"

say "loading the test image and starting a container with a volume"
g docker load <"$work/image.tar" >/dev/null
g docker run -d --name vmapp -p 127.0.0.1:8080:8080 -v vmdata:/data ckpt-vm-testapp:latest >/dev/null
for _ in $(seq 1 60); do state >/dev/null 2>&1 && break; sleep 1; done
sleep 3
before=$(state) || fail "the app does not answer"
history_before=$(g curl -fsS http://127.0.0.1:8080/read?path=/data/history.log)
id_before=$(field id <<<"$before")
say "before power-off: $before"

say "systemctl poweroff"
g systemctl poweroff || true
t_off=$(date +%s)
for _ in $(seq 1 300); do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 1; done
kill -0 "$qemu_pid" 2>/dev/null && fail "the guest did not power off within 300 s"
wait "$qemu_pid" 2>/dev/null || true
qemu_pid=
say "powered off in $(($(date +%s) - t_off)) s"

say "booting again"
t_boot=$(date +%s)
boot
resumed=
for _ in $(seq 1 300); do
	if after=$(state 2>/dev/null); then resumed=$(date +%s); break; fi
	sleep 1
done
[ -n "$resumed" ] || fail "the app did not come back within 300 s of SSH"
say "boot to resumed: $((resumed - t_boot)) s (QEMU start to the app answering)"
say "after boot: $after"

[ "$(field id <<<"$after")" = "$id_before" ] || fail "memory lost: id $id_before before, $(field id <<<"$after") after"
[ "$(field counter <<<"$after")" -ge "$(field counter <<<"$before")" ] || fail "the counter went back"
history_after=$(g curl -fsS http://127.0.0.1:8080/read?path=/data/history.log)
[[ "$history_after" == "$history_before"* ]] || fail "the volume's history is not intact"

# How the shutdown hook ran: its lines and the engine's stop, from the
# previous boot's journal, in order.
say "the previous boot's journal (shutdown):"
g journalctl --no-pager -o short-precise -b -1 -u ckpt-shutdown -u docker.service | grep -E 'vmapp|shutdown hook|Stopping|Stopped' | tail -n 12 >&2
hook_line=$(g journalctl --no-pager -o short-unix -b -1 -u ckpt-shutdown | grep -m1 'shutdown hook:' | cut -d' ' -f1)
engine_stop=$(g journalctl --no-pager -o short-unix -b -1 -u docker.service | grep -m1 -E 'Stopping (docker.service|Docker Application Container Engine)' | cut -d' ' -f1)
[ -n "$hook_line" ] || fail "no 'shutdown hook:' line in the previous boot's journal"
[ -n "$engine_stop" ] || fail "no engine stop in the previous boot's journal"
python3 -c "import sys; sys.exit(0 if float('$hook_line') < float('$engine_stop') else 1)" ||
	fail "the shutdown hook finished at $hook_line, after the engine began to stop at $engine_stop"
say "the shutdown hook finished at $hook_line, before the engine began to stop at $engine_stop"
g journalctl --no-pager -o cat -b 0 -u ckpt-boot | grep -E 'vmapp|boot hook' >&2 || true
echo "vm-test: power cycle: passed"

# vagrant destroy, then vagrant up on the same box: the destroy trigger's
# script exports every checkpoint to the synced folder; the new guest is
# provisioned from scratch, and the up trigger's script imports and resumes
# them.
say "destroy: guest-export.sh saves and exports to the synced folder"
before=$(state) || fail "the app does not answer before destroy"
id_before=$(field id <<<"$before")
g 'bash /vagrant/vagrant/guest-export.sh /vagrant/.ckpt-exports' >&2 || fail "guest-export.sh failed"
g 'tar -C /vagrant -c .ckpt-exports' | tar -C "$work/src" -x   # the synced folder, back on the host
ls -la "$work/src/.ckpt-exports" >&2
g systemctl poweroff || true
for _ in $(seq 1 300); do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 1; done
wait "$qemu_pid" 2>/dev/null || true
qemu_pid=
rm -f "$work/disk.qcow2"
qemu-img create -q -f qcow2 -b "$cache/disk.img" -F raw "$work/disk.qcow2"
say "up: a new guest from the same box"
boot
tar -C "$work/src" -c . | g 'mkdir -p /vagrant && tar -C /vagrant -x'
g 'CKPT_SRC=/vagrant bash /vagrant/vagrant/provision.sh' >"$work/provision2.log" 2>&1 || { cat "$work/provision2.log" >&2; fail "provisioning the new guest failed"; }
g docker load <"$work/image.tar" >/dev/null
g 'bash /vagrant/vagrant/guest-import.sh /vagrant/.ckpt-exports' >&2 || fail "guest-import.sh failed"
after=$(state) || fail "the app did not come back in the new guest"
say "after destroy and up: $after"
[ "$(field id <<<"$after")" = "$id_before" ] || fail "memory lost across destroy/up: id $id_before before, $(field id <<<"$after") after"
echo "vm-test: destroy and up: passed"

# The guest is the project's second platform (kernel 6.1, cgroup v2, real
# systemd, Debian's CRIU 3.17): the core of the integration suite runs in it
# too, compiled on the host. Under emulation every checkpoint takes seconds,
# so the tests of large or many containers stay on the host;
# CKPT_VM_SUITE_RUN=. runs them all (about 40 minutes).
core='^(TestVolumeRootKept|TestSaveResumeCycles|TestMariaDB|TestSaveResumeSameContainer|TestResumeAfterRemove|TestRestartPolicyHeldAcrossEngineRestart|TestEngineRestartBetweenSaveAndResume|TestSaveWithOpenConnection|TestUnknownContainer|TestCorruptManifest|TestFlippedByteInMemoryImage|TestRestoreFailureFallback|TestNonRootWorkload|TestSaveLeaveRunning)$'
suite_run=${CKPT_VM_SUITE_RUN:-$core}
if [ "${CKPT_VM_SUITE:-1}" = 1 ]; then
	g docker rm -f vmapp >/dev/null
	say "loading the MariaDB test image into the guest"
	docker save ckpt-test-mariadb:latest | g docker load >/dev/null || fail "cannot load the MariaDB test image"
	say "the integration suite inside the guest ($(g criu --version | head -n1), cgroup $(g docker info -f '{{.CgroupVersion}}'))"
	remote="cd /vagrant && CKPT_INTEGRATION=1 CKPT_TEST_DISALLOW_SKIP=1 CKPT_TEST_SLOW=1 CKPT_TEST_BIN_DIR=/vagrant/bin CKPT_TEST_REPO=/vagrant ./integration.test -test.v -test.count=1 -test.timeout 45m -test.run $(printf %q "$suite_run") -test.skip TestRegistryAnotherEngine"
	if ! g "$remote" >"$work/suite.log" 2>&1; then
		grep -E '^(=== RUN|--- |\s+\S+_test.go:[0-9]+:)' "$work/suite.log" | tail -n 80 >&2
		fail "the integration suite failed inside the guest"
	fi
	grep -E '^--- ' "$work/suite.log" >&2
	grep -E 'database_test.go:[0-9]+: (cycle|mysqld)' "$work/suite.log" >&2 || true
	say "the integration suite passed inside the guest: $(grep -c '^--- PASS' "$work/suite.log") tests"
fi

poweroff_guest
passed=2
if [ "${CKPT_VM_SUITE:-1}" = 1 ]; then passed=$((passed + 1)); fi

# The package as a user installs it: in a guest fresh from the image, with
# apt-get, which needs no network there (criu and docker.io, what it
# depends on and recommends, are in the image). Then ckpt doctor must pass,
# and /usr/bin/ckpt must save and resume a container with its memory. The
# hooks: hook install takes over from the package's units and enables its
# own; hook uninstall must leave ckpt-shutdown.service, still active and now
# the package's unit again, with no ExecStop= to run at shutdown (its
# drop-in). Removing the package runs hook uninstall itself.
# CKPT_VM_PACKAGE=0 leaves this out (and make deb).
if [ "${CKPT_VM_PACKAGE:-1}" = 1 ]; then
	rm -f "$work/disk.qcow2"
	qemu-img create -q -f qcow2 -b "$cache/disk.img" -F raw "$work/disk.qcow2"
	say "the package: booting a fresh guest"
	boot
	g "cat >/root/$(basename "$deb")" <"$deb"
	g 'cd /root && DEBIAN_FRONTEND=noninteractive apt-get install -y ./ckpt_*.deb' >"$work/apt.log" 2>&1 ||
		{ cat "$work/apt.log" >&2; fail "apt-get install ./$(basename "$deb") failed in the guest"; }
	[ "$(g command -v ckpt)" = /usr/bin/ckpt ] || fail "ckpt is not /usr/bin/ckpt in the guest: $(g command -v ckpt)"
	say "installed $(g ckpt --version)"
	for _ in $(seq 1 60); do g docker info >/dev/null 2>&1 && break; sleep 1; done
	g ckpt doctor >"$work/doctor.log" 2>&1 || { cat "$work/doctor.log" >&2; fail "ckpt doctor failed in the guest"; }
	cat "$work/doctor.log" >&2
	g docker ckpt ls >/dev/null || fail "docker ckpt (the CLI plugin in /usr/libexec/docker/cli-plugins) does not run"
	# Messages name docs pages where hint.Doc finds them.
	g 'ls /usr/share/doc/ckpt/docs/engines.md*' >/dev/null || fail "no /usr/share/doc/ckpt/docs/engines.md(.gz), which ckpt's messages name"

	g docker load <"$work/image.tar" >/dev/null
	g docker run -d --name pkgapp -p 127.0.0.1:8080:8080 -v pkgdata:/data ckpt-vm-testapp:latest >/dev/null
	for _ in $(seq 1 60); do state >/dev/null 2>&1 && break; sleep 1; done
	sleep 3
	before=$(state) || fail "the app does not answer in the package's guest"
	g ckpt save pkgapp >&2 || fail "ckpt save failed with the package's ckpt"
	g 'docker rm -f pkgapp && docker volume rm pkgdata' >/dev/null
	g ckpt resume pkgapp >&2 || fail "ckpt resume failed with the package's ckpt"
	for _ in $(seq 1 60); do state >/dev/null 2>&1 && break; sleep 1; done
	after=$(state) || fail "the app does not answer after ckpt resume"
	say "before save: $before; after resume: $after"
	[ "$(field id <<<"$after")" = "$(field id <<<"$before")" ] ||
		fail "memory lost with the package's ckpt: id $(field id <<<"$before") before, $(field id <<<"$after") after"
	[ "$(field counter <<<"$after")" -ge "$(field counter <<<"$before")" ] || fail "the counter went back"

	unit() { g systemctl show -p "$1" --value ckpt-shutdown.service; }
	[ "$(unit UnitFileState)" = disabled ] || fail "the package's ckpt-shutdown.service is $(unit UnitFileState), not disabled"
	g ckpt hook install >&2 || fail "ckpt hook install failed"
	[ "$(unit FragmentPath)" = /etc/systemd/system/ckpt-shutdown.service ] || fail "after hook install, the unit is $(unit FragmentPath)"
	[ "$(unit ActiveState)" = active ] || fail "after hook install, ckpt-shutdown.service is $(unit ActiveState)"
	g systemctl is-enabled ckpt-boot.service >/dev/null || fail "after hook install, ckpt-boot.service is not enabled"
	g ckpt hook uninstall >&2 || fail "ckpt hook uninstall failed"
	case "$(unit FragmentPath)" in # the package's; /lib is /usr/lib on bookworm
	/usr/lib/systemd/system/ckpt-shutdown.service | /lib/systemd/system/ckpt-shutdown.service) ;;
	*) fail "after hook uninstall, the unit is $(unit FragmentPath), not the package's" ;;
	esac
	[ "$(unit ActiveState)" = active ] || fail "hook uninstall stopped ckpt-shutdown.service, which runs the hook"
	[ -z "$(unit ExecStop)" ] || fail "after hook uninstall, ckpt-shutdown.service would still run at shutdown: $(unit ExecStop)"
	g docker inspect -f '{{.State.Running}}' pkgapp | grep -qx true || fail "pkgapp stopped during hook install or uninstall"

	g ckpt hook install >/dev/null || fail "ckpt hook install (again) failed"
	[ -n "$(unit ExecStop)" ] || fail "hook install after uninstall left ckpt-shutdown.service disarmed"
	g 'DEBIAN_FRONTEND=noninteractive apt-get remove -y ckpt' >"$work/apt-remove.log" 2>&1 ||
		{ cat "$work/apt-remove.log" >&2; fail "apt-get remove ckpt failed"; }
	g test ! -e /usr/bin/ckpt -a ! -e /etc/systemd/system/ckpt-shutdown.service -a ! -e /etc/systemd/system/ckpt-boot.service ||
		fail "apt-get remove ckpt left the binary or the hooks' units"
	[ -z "$(unit ExecStop)" ] || fail "after apt-get remove, ckpt-shutdown.service would still run at shutdown: $(unit ExecStop)"
	g docker inspect -f '{{.State.Running}}' pkgapp | grep -qx true || fail "pkgapp stopped when the package was removed"
	echo "vm-test: package: passed"
	passed=$((passed + 1))
	poweroff_guest
fi

say "total $(($(date +%s) - t_start)) s"
echo "vm-test: $passed passed, 0 failed"
