#!/usr/bin/env bash
# bench/soak.sh — CYCLES save/resume cycles of a container under load
# (it counts in memory and appends to a history file in its volume every
# second), each one in place or after docker rm, alternately. It stops at the
# first failure. It reports: failures (must be 0), memory kept every time
# (the in-memory id never changes and the counter never goes back), the
# store's size after each cycle (flat: every cycle's checkpoint replaces the
# one before), containerd's leftover /tmp/ctrd-checkpoint* copies (must stay
# 0) and dockerd's resident memory at the start and the end. Not part of
# make test: run as root with the engine and CRIU up (make soak).
set -euo pipefail
cd "$(dirname "$0")/.."
CYCLES=${CYCLES:-100}
MEM_MB=${MEM_MB:-64}
CKPT=${CKPT:-bin/ckpt}
NAME=ckpt-soak
VOLUME=ckpt-soak-data
IMAGE=ckpt-soak:latest
. bench/lib.sh
bench_init ckpt-soak
docker run -d --name "$NAME" -p 127.0.0.1::8080 -v "$VOLUME:/data" -e APP_ALLOC_MB="$MEM_MB" "$IMAGE" >/dev/null

state() { # prints "id counter", waiting until the app answers
	local i
	for i in $(seq 1 300); do
		if out=$(curl -fsS "http://$(docker port "$NAME" 8080/tcp 2>/dev/null | sed -n 1p)/state" 2>/dev/null); then
			echo "$out" | sed -E 's/.*"counter":([0-9]+).*"id":"([0-9a-f]+)".*/\2 \1/'
			return
		fi
		sleep 0.1
	done
	echo "no answer" >&2
	return 1
}
rss() { ps -o rss= -p "$(pgrep -xo dockerd)" | tr -d ' '; }
leaks() { ls -d /tmp/ctrd-checkpoint* 2>/dev/null | wc -l; }

read -r id0 last < <(state)
rss0=$(rss)
failures=0
sizes=()
start=$(date +%s)
for c in $(seq 1 "$CYCLES"); do
	if ! "$CKPT" save --quiet "$NAME" >"$work/log" 2>&1; then
		failures=$((failures + 1)); echo "cycle $c: save failed:"; cat "$work/log"; break
	fi
	if ((c % 2 == 0)); then docker rm "$NAME" >/dev/null; fi
	if ! "$CKPT" resume --quiet "$NAME" >"$work/log" 2>&1; then
		failures=$((failures + 1)); echo "cycle $c: resume failed:"; cat "$work/log"; break
	fi
	read -r id n < <(state)
	if [[ $id != "$id0" || $n -lt $last ]]; then
		failures=$((failures + 1)); echo "cycle $c: memory not kept: id $id (was $id0), counter $n (was $last)"; break
	fi
	last=$n
	# Keep the newest checkpoint only, as keep_last: 1 would.
	for old in $("$CKPT" ls "$NAME" | awk 'NR>1 {print $1}' | head -n -1); do "$CKPT" rm "$old" >/dev/null; done
	sizes+=("$(du -sk "$CKPT_STORE" | cut -f1)")
	if ((c % 10 == 0)); then echo "cycle $c: store $(du -sh "$CKPT_STORE" | cut -f1), leaked copies $(leaks), dockerd rss $(($(rss) / 1024)) MiB"; fi
done
took=$(($(date +%s) - start))
echo "soak: $c cycles in ${took}s, $failures failures; store ${sizes[0]:-?} KiB after the first cycle, ${sizes[-1]:-?} KiB after the last;" \
	"leaked ctrd-checkpoint copies $(leaks); dockerd rss $((rss0 / 1024)) MiB -> $(($(rss) / 1024)) MiB"
exit "$failures"
