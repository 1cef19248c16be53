#!/usr/bin/env bash
# go.sh — the Go toolchain that builds ckpt.
#   scripts/go.sh          prints the go command to use: the go on PATH when
#                          it is at least go.mod's version, else
#                          /usr/local/go/bin/go (the Makefile's GO);
#   scripts/go.sh install  as root, installs Go GO_VERSION in /usr/local/go
#                          when that go is missing or older (setup.sh runs
#                          it): the official toolchain zip from the Go module
#                          proxy ($GOPROXY, default https://proxy.golang.org),
#                          its sha256 checked. Needs curl and unzip.
set -euo pipefail
GO_VERSION=1.26.8
GO_SHA256=30c2b1bf7dcc88d3eb0a1364e47ddd9128edb3110a30e8a0ef61cd5856b31de7
GO_ROOT=/usr/local/go
cd "$(dirname "$0")/.."

say() { echo "go.sh: $*" >&2; }
die() { echo "go.sh: error: $*" >&2; exit 1; }

# version_ge A B: A >= B for dotted versions.
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

want=$(sed -n 's/^go \([0-9.]*\)$/\1/p' go.mod)
[ -n "$want" ] || die "no go line in go.mod"

# version_of GO prints the version of the toolchain GO itself, not of one
# it would download for go.mod (GOTOOLCHAIN=local, outside the module).
version_of() { (cd / && GOTOOLCHAIN=local "$1" version 2>/dev/null) | sed -n 's/^go version go\([0-9.]*\).*/\1/p'; }
go_ok() { local v; v=$(version_of "$1") && [ -n "$v" ] && version_ge "$v" "$want"; }

# go_cmd prints the go to use.
go_cmd() {
	local g
	if g=$(command -v go) && go_ok "$g"; then
		echo "$g"
	else
		echo "$GO_ROOT/bin/go"
	fi
}

case "${1:-}" in
"") go_cmd ;;
install)
	g=$(go_cmd)
	if go_ok "$g"; then
		exit 0
	fi
	version_ge "$GO_VERSION" "$want" ||
		die "go.mod asks for Go $want, and this script installs $GO_VERSION: update GO_VERSION and GO_SHA256 in $0"
	[ "$(id -u)" = 0 ] || die "Go $want or newer is needed to build ckpt: run as root to install Go $GO_VERSION in $GO_ROOT, or install it yourself"
	[ "$(uname -m)" = x86_64 ] || die "this script installs Go for amd64 only; install Go $want or newer for $(uname -m) yourself"
	for tool in curl unzip; do
		command -v "$tool" >/dev/null || die "$tool is needed to install Go (apt-get install curl unzip ca-certificates)"
	done
	proxy=${GOPROXY:-}
	proxy=${proxy%%[,|]*}
	case "$proxy" in
	"" | direct) proxy=https://proxy.golang.org ;;
	off) die "GOPROXY=off forbids downloading Go: install Go $want or newer in $GO_ROOT yourself" ;;
	esac
	mod=v0.0.1-go$GO_VERSION.linux-amd64
	url=${proxy%/}/golang.org/toolchain/@v/$mod.zip
	if [ -x "$GO_ROOT/bin/go" ]; then
		say "$GO_ROOT holds Go $(version_of "$GO_ROOT/bin/go"), older than $want: replacing it with Go $GO_VERSION"
	else
		say "installing Go $GO_VERSION in $GO_ROOT (go.mod asks for $want; $(command -v go >/dev/null && echo "the go on PATH is $(version_of go)" || echo "no go on PATH"))"
	fi
	work=$(mktemp -d /tmp/ckpt-go.XXXXXX)
	trap 'rm -rf "$work"' EXIT
	curl -fsSL --retry 3 -o "$work/go.zip" "$url" || die "cannot download $url"
	echo "$GO_SHA256  $work/go.zip" | sha256sum -c --quiet - || die "$url: sha256 mismatch (want $GO_SHA256)"
	unzip -q "$work/go.zip" -d "$work/unpacked"
	tree="$work/unpacked/golang.org/toolchain@$mod"
	[ -x "$tree/bin/go" ] || die "$url holds no golang.org/toolchain@$mod/bin/go"
	# Next to GO_ROOT, then renamed: a failure leaves the old one in place.
	rm -rf "$GO_ROOT.ckpt-new" "$GO_ROOT.ckpt-old"
	mkdir -p "$(dirname "$GO_ROOT")"
	mv "$tree" "$GO_ROOT.ckpt-new"
	if [ -e "$GO_ROOT" ]; then mv "$GO_ROOT" "$GO_ROOT.ckpt-old"; fi
	mv "$GO_ROOT.ckpt-new" "$GO_ROOT"
	rm -rf "$GO_ROOT.ckpt-old"
	go_ok "$GO_ROOT/bin/go" || die "$GO_ROOT/bin/go does not run, or is not Go $want or newer"
	say "installed $("$GO_ROOT/bin/go" version) in $GO_ROOT; add $GO_ROOT/bin to PATH to use it (make finds it there)"
	;;
*)
	echo "usage: $0 [install]" >&2
	exit 2
	;;
esac
