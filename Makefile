# ckpt — see README.md. Targets that touch the engine need root.

# Go: the go on PATH when it is go.mod's version or newer, else
# /usr/local/go/bin/go, where scripts/setup.sh installs that version
# (scripts/go.sh). Recipes, and the scripts they run, find it first on PATH.
GO      ?= $(shell scripts/go.sh 2>/dev/null || echo go)
GO      := $(GO)
GO_DIR  := $(patsubst %/,%,$(dir $(filter /%,$(GO))))
export PATH := $(if $(GO_DIR),$(GO_DIR):)$(PATH)

BIN     := bin/ckpt
# One version for ckpt --version and the package: scripts/version.sh.
VERSION := $(shell scripts/version.sh 2>/dev/null || echo 0.0~unknown)
LDFLAGS := -X github.com/ckpt-dev/ckpt/cmd/ckpt/app.Version=$(VERSION)

# make install: PREFIX, and DESTDIR for staging.
PREFIX  ?= /usr/local
DEST    := $(DESTDIR)$(PREFIX)
DEB     := bin/ckpt_$(VERSION)_amd64.deb

.PHONY: all need-go build install uninstall deb deb-check setup demo test unit fuzz check bench perf bench-registry soak docs vm-test vagrant-validate engine-matrix clean

all: build

# A go to build with, or what to do.
need-go:
	@command -v $(GO) >/dev/null || { echo "no Go $$(sed -n 's/^go //p' go.mod) or newer: run scripts/go.sh install as root (make setup does), or put one on PATH"; exit 1; }

build: need-go
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/ckpt

# For people who build from source: the binary, its containerd runtime link
# (containerd finds containerd-shim-ckpt-v2 on its PATH), the man page, the
# shell completions and the docker CLI plugin link (docker ckpt ...). The
# hooks' systemd units are not installed: ckpt hook install writes them.
install: build docs
	install -d $(DEST)/bin $(DEST)/share/man/man8 $(DEST)/share/bash-completion/completions \
		$(DEST)/share/zsh/site-functions $(DEST)/share/fish/vendor_completions.d $(DEST)/lib/docker/cli-plugins
	install -m 0755 $(BIN) $(DEST)/bin/ckpt
	ln -sfn ckpt $(DEST)/bin/containerd-shim-ckpt-v2
	install -m 0644 bin/share/man/man8/ckpt.8 $(DEST)/share/man/man8/ckpt.8
	install -m 0644 bin/share/completion/ckpt.bash $(DEST)/share/bash-completion/completions/ckpt
	install -m 0644 bin/share/completion/_ckpt $(DEST)/share/zsh/site-functions/_ckpt
	install -m 0644 bin/share/completion/ckpt.fish $(DEST)/share/fish/vendor_completions.d/ckpt.fish
	ln -sfn ../../../bin/ckpt $(DEST)/lib/docker/cli-plugins/docker-ckpt

# What make install installed. The hooks' units name the binary: remove
# them first (ckpt hook uninstall).
uninstall:
	@if [ -z "$(DESTDIR)" ] && grep -qs '=$(PREFIX)/bin/ckpt ' /etc/systemd/system/ckpt-shutdown.service /etc/systemd/system/ckpt-boot.service; then \
		echo "uninstall: the hooks' units in /etc/systemd/system run $(PREFIX)/bin/ckpt: run ckpt hook uninstall first"; exit 1; fi
	rm -f $(DEST)/bin/ckpt $(DEST)/bin/containerd-shim-ckpt-v2 $(DEST)/share/man/man8/ckpt.8 \
		$(DEST)/share/bash-completion/completions/ckpt $(DEST)/share/zsh/site-functions/_ckpt \
		$(DEST)/share/fish/vendor_completions.d/ckpt.fish $(DEST)/lib/docker/cli-plugins/docker-ckpt

# The Debian package, bin/ckpt_$(VERSION)_amd64.deb (scripts/deb.sh,
# packaging/): the same build, stripped and without local paths.
deb: need-go
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS) -s -w' -o bin/deb/ckpt ./cmd/ckpt
	GO=$(GO) scripts/deb.sh bin/deb/ckpt '$(VERSION)' $(DEB)

# The package against Debian's policy, with bookworm's lintian: errors and
# warnings fail (packaging/lintian-overrides says what is overridden, and why).
deb-check: deb
	@command -v lintian >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends lintian >/dev/null; }
	lintian --fail-on error,warning --display-info $(DEB)

# Install what ckpt needs (engine, CRIU) and start the engine, and what
# building it needs (Go, make, git); idempotent.
setup:
	scripts/setup.sh

# A stateful sample container with a volume is saved, removed with its
# volume, resumed, and shown to continue its count.
demo: setup build
	scripts/demo.sh

# The whole suite: unit tests and the integration tests against the real
# engine and CRIU (with a real MariaDB, whose image is built from Debian's
# packages and cached), the Vagrantfile's validation, and the VM power-cycle test.
# A missing engine or CRIU fails the run, never skips it.
test: setup check build
	integration/images/mariadb/build.sh
	CKPT_INTEGRATION=1 CKPT_TEST_DISALLOW_SKIP=1 $(GO) test -count=1 -timeout 30m -skip '^$(OTHER_ENGINE_TESTS)$$' ./...
	CKPT=$(BIN) scripts/demo.sh
	$(MAKE) deb-check engine-matrix vagrant-validate vm-test

# The integration suite against other Docker engines (Debian's docker.io of
# other suites, each in its own mount namespace on this kernel); see
# scripts/engines.sh and docs/engines.md. Then, from this host's engine to
# that one, the tests that need two engines (OTHER_ENGINE_TESTS: the
# other runs leave them out).
OTHER_ENGINE_TESTS = TestRegistryAnotherEngine
ENGINES ?= trixie sid
engine-matrix: setup
	@for e in $(ENGINES); do \
		echo "engine-matrix: $$e"; \
		scripts/engines.sh build $$e && scripts/engines.sh test $$e && \
		scripts/engines.sh exec $$e env CKPT=/opt/ckpt/bin/ckpt DEMO_APP=/opt/ckpt/bin/testapp /opt/ckpt/scripts/demo.sh && \
		CKPT_INTEGRATION=1 CKPT_TEST_DISALLOW_SKIP=1 CKPT_TEST_OTHER_ENGINE=$$e \
			$(GO) test -count=1 -timeout 10m -run '^$(OTHER_ENGINE_TESTS)$$' ./integration; rc=$$?; \
		scripts/engines.sh stop $$e; \
		[ $$rc = 0 ] || { echo "engine-matrix: $$e failed"; exit 1; }; \
	done

# Boots a real Debian guest under QEMU, powers it off and on, and checks
# that a container came back with its memory and volume; then installs the
# package (make deb) in a fresh guest and saves and resumes there
# (vagrant/vm/test.sh).
vm-test: setup
	integration/images/mariadb/build.sh
	vagrant/vm/test.sh

# vagrant validate, with Debian's vagrant and vagrant-libvirt.
vagrant-validate:
	@command -v vagrant >/dev/null && vagrant plugin list 2>/dev/null | grep -q libvirt || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends vagrant vagrant-libvirt >/dev/null; }
	cd vagrant && VAGRANT_DEFAULT_PROVIDER=libvirt vagrant validate
	cd vagrant/project && VAGRANT_DEFAULT_PROVIDER=libvirt vagrant validate

# Unit tests only: no engine needed.
unit:
	$(GO) test ./...

# Each fuzz target for FUZZTIME, on demand (not in CI). A new input is
# minimized for one run only: the default, a minute each, left the fuzzer
# minimizing most of the time (FuzzImport ran 11 inputs in 60 s).
FUZZTIME ?= 60s
fuzz:
	$(GO) test -run XXX -fuzz '^FuzzImport$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1x ./internal/transfer
	$(GO) test -run XXX -fuzz '^FuzzManifest$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1x ./internal/store
	$(GO) test -run XXX -fuzz '^FuzzRead$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1x ./internal/inspect
	$(GO) test -run XXX -fuzz '^FuzzConfig$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1x ./restore

check:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt needed'; exit 1; }
	$(GO) vet ./...

# The man page (section 8) and shell completions, generated from the app
# itself into bin/share; never written by hand.
docs: build
	$(BIN) gen-docs --dir bin/share

# Speed and size on this machine; see bench/README.md.
bench: setup build
	bench/run.sh

# ckpt side by side with raw CRIU, podman and the engine alone, written to
# docs/performance.md (not in CI; about 15 minutes).
perf: setup build
	bench/perf.sh

# Push and pull through a real registry (Debian's docker-registry): bytes
# sent by a second push after a 10% change, rates against disk and loopback.
bench-registry: setup build
	bench/registry.sh

# CYCLES save/resume cycles of a container under load (not in CI).
soak: setup build
	bench/soak.sh

clean:
	rm -rf bin
