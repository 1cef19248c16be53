# ckpt — see README.md. Targets that touch the engine need root.
GO      ?= go
BIN     := bin/ckpt
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/ckpt-dev/ckpt/cmd/ckpt/app.Version=$(VERSION)

.PHONY: all build setup demo test unit fuzz check bench perf bench-registry soak docs vm-test vagrant-validate engine-matrix clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/ckpt

# Install what ckpt needs (engine, CRIU) and start the engine; idempotent.
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
test: setup check
	integration/images/mariadb/build.sh
	CKPT_INTEGRATION=1 CKPT_TEST_DISALLOW_SKIP=1 $(GO) test -count=1 -timeout 30m -skip '^$(OTHER_ENGINE_TESTS)$$' ./...
	$(MAKE) engine-matrix vagrant-validate vm-test

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
		CKPT_INTEGRATION=1 CKPT_TEST_DISALLOW_SKIP=1 CKPT_TEST_OTHER_ENGINE=$$e \
			$(GO) test -count=1 -timeout 10m -run '^$(OTHER_ENGINE_TESTS)$$' ./integration; rc=$$?; \
		scripts/engines.sh stop $$e; \
		[ $$rc = 0 ] || { echo "engine-matrix: $$e failed"; exit 1; }; \
	done

# Boots a real Debian guest under QEMU, powers it off and on, and checks
# that a container came back with its memory and volume (vagrant/vm/test.sh).
vm-test: setup
	integration/images/mariadb/build.sh
	vagrant/vm/test.sh

# vagrant validate, with Debian's vagrant and vagrant-libvirt.
vagrant-validate:
	@command -v vagrant >/dev/null && vagrant plugin list 2>/dev/null | grep -q libvirt || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends vagrant vagrant-libvirt >/dev/null; }
	cd vagrant && VAGRANT_DEFAULT_PROVIDER=libvirt vagrant validate

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
