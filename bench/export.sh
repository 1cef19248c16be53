#!/usr/bin/env bash
# bench/export.sh — export size and time of a checkpoint of a container with
# MEM_MB (default 512) MiB of memory, for each compression. The test app
# fills that memory with random bytes: the worst case for compression; with
# KIND=mixed, half of it is repeated text records, more like a real heap.
# Run as root with the engine and CRIU up.
set -euo pipefail
cd "$(dirname "$0")/.."
MEM_MB=${MEM_MB:-512}
CKPT=${CKPT:-bin/ckpt}
NAME=ckpt-bench-export
VOLUME=ckpt-bench-export-data
IMAGE=ckpt-bench:latest
. bench/lib.sh
bench_init ckpt-bench-export
docker run -d --name "$NAME" -p 127.0.0.1::8080 -e APP_ALLOC_MB="$MEM_MB" -e APP_ALLOC_KIND="${KIND:-random}" "$IMAGE" >/dev/null
bench_wait "$NAME"
"$CKPT" save -q "$NAME" >/dev/null
echo "checkpoint of a container with $MEM_MB MiB of ${KIND:-random} memory: $(du -sh "$CKPT_STORE/containers/$NAME/checkpoints" | cut -f1)"
for c in none zstd gzip; do
	t0=$(date +%s.%N)
	"$CKPT" export --compress "$c" -o "$work/x.ckpt" "$NAME" 2>/dev/null
	t1=$(date +%s.%N)
	printf '%-5s %8s MiB  %6.1f s\n' "$c" "$(($(stat -c %s "$work/x.ckpt") / 1048576))" "$(echo "$t1 - $t0" | bc -l)"
	rm -f "$work/x.ckpt"
done
