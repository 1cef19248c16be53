#!/usr/bin/env bash
# bench/hooks.sh — how long the shutdown and boot hooks take for N small
# containers (the test app, ~1 MiB of memory each), all hot, at PARALLEL
# at once. Run as root with the engine and CRIU up: bench/hooks.sh 10 20
set -euo pipefail
cd "$(dirname "$0")/.."
CKPT=${CKPT:-bin/ckpt}
PARALLEL=${PARALLEL:-2}
IMAGE=ckpt-bench:latest
work=$(mktemp -d /var/tmp/ckpt-bench-hooks.XXXXXX)
export CKPT_STORE=$work/store
remove_containers() { docker ps -aq --filter label=io.ckpt.bench=1 | xargs -r docker rm -f >/dev/null; }
cleanup() {
	remove_containers
	rm -rf "$work"
}
trap cleanup EXIT
CGO_ENABLED=0 go build -o "$work/app" ./internal/testapp
tar -C "$work" -c app | docker import -c 'ENTRYPOINT ["/app"]' - "$IMAGE" >/dev/null
cat >"$work/policy.yaml" <<POL
deadline: 10m
parallel: $PARALLEL
default: {mode: skip}
rules:
  - name: bench
    match: {labels: {io.ckpt.bench: "1"}}
    mode: hot
POL

for n in "${@:-10 20}"; do
	for i in $(seq 1 "$n"); do
		docker run -d --name "ckpt-bench-$i" --label io.ckpt.bench=1 "$IMAGE" >/dev/null
	done
	sleep 2
	t0=$(date +%s.%N)
	"$CKPT" hook run shutdown --policy "$work/policy.yaml" | tail -n1
	t1=$(date +%s.%N)
	"$CKPT" hook run boot --policy "$work/policy.yaml" | tail -n1
	t2=$(date +%s.%N)
	printf '%3d containers, parallel %d: shutdown hook %.1f s, boot hook %.1f s\n' "$n" "$PARALLEL" \
		"$(echo "$t1 - $t0" | bc -l)" "$(echo "$t2 - $t1" | bc -l)"
	remove_containers
	rm -rf "$CKPT_STORE"
done
