#!/usr/bin/env bash
# demo.sh — a stateful container with a volume is saved, removed together
# with its volume, resumed by ckpt, and shown to continue where it was.
# Needs root, the engine and CRIU (make demo runs scripts/setup.sh first).
set -euo pipefail
cd "$(dirname "$0")/.."
CKPT=${CKPT:-bin/ckpt}
NAME=ckpt-demo
VOLUME=ckpt-demo-data
IMAGE=ckpt-demo:latest
export CKPT_STORE=${CKPT_STORE:-$(mktemp -d /tmp/ckpt-demo-store.XXXXXX)}

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
state() { curl -fsS "http://$(docker port "$NAME" 8080/tcp | head -n1)/state"; echo; }
cleanup() {
	docker rm -f "$NAME" >/dev/null 2>&1 || true
	docker volume rm "$VOLUME" >/dev/null 2>&1 || true
	rm -rf "$CKPT_STORE"
}
trap cleanup EXIT
cleanup >/dev/null 2>&1 || true
mkdir -p "$CKPT_STORE"

step "building the sample app into an image FROM scratch (nothing is pulled)"
work=$(mktemp -d)
CGO_ENABLED=0 go build -o "$work/app" ./internal/testapp
tar -C "$work" -c app | docker import -c 'ENTRYPOINT ["/app"]' -c 'EXPOSE 8080' - "$IMAGE" >/dev/null
rm -rf "$work"

step "starting $NAME: an in-memory id and counter, history in volume $VOLUME"
docker run -d --name "$NAME" -p 127.0.0.1::8080 -v "$VOLUME:/data" "$IMAGE" >/dev/null
sleep 3
before=$(state)
echo "$before"

step "ckpt save $NAME"
"$CKPT" save "$NAME"
"$CKPT" ls

step "docker rm -f $NAME; docker volume rm $VOLUME   (container and data gone)"
docker rm -f "$NAME" >/dev/null
docker volume rm "$VOLUME" >/dev/null
docker ps -a --filter "name=^$NAME\$" --format '{{.Names}}' | grep -q . && exit 1
echo "gone"

step "ckpt resume $NAME"
"$CKPT" resume "$NAME"
sleep 1
after=$(state)
echo "$after"
id() { sed 's/.*"id":"\([0-9a-f]*\)".*/\1/'; }
if [ "$(id <<<"$before")" != "$(id <<<"$after")" ]; then
	echo "demo FAILED: the process came back with another id" >&2
	exit 1
fi
echo "same id, and the counter went on from where it was: the process memory survived"
echo "last lines of the history in the recreated volume:"
curl -fsS "http://$(docker port "$NAME" 8080/tcp | head -n1)/read?path=/data/history.log" | tail -n 3
