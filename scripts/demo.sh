#!/usr/bin/env bash
# demo.sh — a stateful container with a volume is saved, removed together
# with its volume, resumed by ckpt, and shown to continue where it was.
# Needs root, the engine and CRIU (make demo runs scripts/setup.sh first).
#
# CKPT names the ckpt to run (default bin/ckpt), DEMO_APP a prebuilt sample
# app (default: built here with go): CI runs the demo so inside each engine
# of the matrix (make engine-matrix), where there is no Go toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."
CKPT=${CKPT:-bin/ckpt}
NAME=ckpt-demo
VOLUME=ckpt-demo-data
IMAGE=ckpt-demo:latest
export CKPT_STORE=${CKPT_STORE:-$(mktemp -d /tmp/ckpt-demo-store.XXXXXX)}
work=$(mktemp -d)

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
url() { echo "http://$(docker port "$NAME" 8080/tcp | head -n1)$1"; }
get() { "$work/app" get "$(url "$1")"; }
# waitfor PATH: the app's answer to PATH, once it answers (30 s at most).
waitfor() {
	local i
	for i in $(seq 300); do
		if out=$(get "$1" 2>/dev/null); then
			echo "$out"
			return 0
		fi
		sleep 0.1
	done
	echo "demo FAILED: $NAME does not answer on $(url "$1")" >&2
	return 1
}
cleanup() {
	docker rm -f "$NAME" >/dev/null 2>&1 || true
	docker volume rm "$VOLUME" >/dev/null 2>&1 || true
	rm -rf "$CKPT_STORE" "$work"
}
trap cleanup EXIT
cleanup >/dev/null 2>&1 || true
mkdir -p "$CKPT_STORE" "$work"

step "building the sample app into an image FROM scratch (nothing is pulled)"
if [ -n "${DEMO_APP:-}" ]; then
	cp "$DEMO_APP" "$work/app"
else
	CGO_ENABLED=0 go build -o "$work/app" ./internal/testapp
fi
tar -C "$work" -c app | docker import -c 'ENTRYPOINT ["/app"]' -c 'EXPOSE 8080' - "$IMAGE" >/dev/null

step "starting $NAME: an in-memory id and counter, history in volume $VOLUME"
docker run -d --name "$NAME" -p 127.0.0.1::8080 -v "$VOLUME:/data" "$IMAGE" >/dev/null
waitfor /state >/dev/null
# Let the counter go on for a moment, so that going on is seen.
for i in $(seq 100); do
	before=$(get /state)
	case "$before" in *'"counter":0,'* | *'"counter":1,'*) sleep 0.1 ;; *) break ;; esac
done
echo "$before"

step "ckpt save $NAME"
"$CKPT" save "$NAME"
"$CKPT" ls

step "docker rm -f $NAME; docker volume rm $VOLUME   (container and data gone)"
docker rm -f "$NAME" >/dev/null
docker volume rm "$VOLUME" >/dev/null
if docker ps -a --filter "name=^$NAME\$" --format '{{.Names}}' | grep -q .; then
	echo "demo FAILED: $NAME is still there" >&2
	exit 1
fi
echo "gone"

step "ckpt resume $NAME"
"$CKPT" resume "$NAME"
after=$(waitfor /state)
echo "$after"
id() { sed 's/.*"id":"\([0-9a-f]*\)".*/\1/'; }
counter() { sed 's/.*"counter":\([0-9]*\).*/\1/'; }
if [ "$(id <<<"$before")" != "$(id <<<"$after")" ] || [ "$(counter <<<"$after")" -lt "$(counter <<<"$before")" ]; then
	echo "demo FAILED: the process came back with another id, or its counter went back" >&2
	exit 1
fi
echo "same id, and the counter went on from where it was: the process memory survived"
echo "last lines of the history in the recreated volume:"
get /read?path=/data/history.log | tail -n 3
