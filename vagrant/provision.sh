#!/usr/bin/env bash
# provision.sh — make a Debian guest ready to keep its containers across
# vagrant halt/up: Docker with experimental features on, a CRIU that works on
# the guest's kernel, ckpt itself, a policy, and the systemd hooks. The one
# provisioning script: the Vagrantfile runs it, and so does the VM test.
#
# CKPT_SRC is the project's folder as the guest sees it (the synced folder,
# /vagrant by default). ckpt comes from $CKPT_SRC/bin/ckpt when the host
# built it (make build), else it is built here when Go is installed.
# Idempotent, and offline when the guest already has its packages.
set -euo pipefail
src=${CKPT_SRC:-/vagrant}
say() { echo "provision: $*" >&2; }
[ "$(id -u)" = 0 ] || { say "run as root"; exit 1; }

# Engine, CRIU (Debian's where `criu check` passes, else built), experimental
# features: the project's set-up script, without the test tools or the build
# tools (ckpt is built on the host). A fresh guest's engine may run without
# experimental features: restarting it is fine here.
CKPT_SETUP_TEST_TOOLS=0 CKPT_SETUP_BUILD_TOOLS=0 CKPT_SETUP_RESTART_ENGINE=1 bash "$src/scripts/setup.sh"

if [ -x "$src/bin/ckpt" ]; then
	install -m 0755 "$src/bin/ckpt" /usr/local/bin/ckpt
elif command -v go >/dev/null; then
	(cd "$src" && CGO_ENABLED=0 go build -o /usr/local/bin/ckpt ./cmd/ckpt)
else
	say "no ckpt binary: run make build on the host (the synced folder then has bin/ckpt)"
	exit 1
fi
say "installed $(/usr/local/bin/ckpt --version)"

if [ ! -e /etc/ckpt/policy.yaml ]; then
	install -d -m 0755 /etc/ckpt
	install -m 0644 "$src/vagrant/policy.yaml" /etc/ckpt/policy.yaml
fi
ckpt policy check /etc/ckpt/policy.yaml
ckpt hook install --policy /etc/ckpt/policy.yaml
