#!/usr/bin/env bash
# bench/hooks.sh — how long the shutdown and boot hooks take for N small
# containers (the test app, ~1 MiB of memory each), all hot, at PARALLEL
# at once. Run as root with the engine and CRIU up: bench/hooks.sh 10 20
set -euo pipefail
trap 'echo "bench/hooks.sh: line $LINENO: exit status $?" >&2' ERR
cd "$(dirname "$0")/.."
CKPT=${CKPT:-bin/ckpt}
PARALLEL=${PARALLEL:-2}
NAME=ckpt-bench-1
VOLUME=ckpt-bench-hooks-data
IMAGE=ckpt-bench:latest
remove_containers() { docker ps -aq --filter label=io.ckpt.bench=1 | xargs -r docker rm -f >/dev/null; }
bench_more_cleanup() { remove_containers; }
. bench/lib.sh
bench_init ckpt-bench-hooks
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
		docker run -d --name "ckpt-bench-$i" -p 127.0.0.1::8080 --label io.ckpt.bench=1 "$IMAGE" >/dev/null
	done
	for i in $(seq 1 "$n"); do bench_wait "ckpt-bench-$i"; done
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
