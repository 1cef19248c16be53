#!/usr/bin/env bash
# bench/registry.sh — ckpt push and pull through a real registry (Debian's
# docker-registry, plain HTTP on 127.0.0.1, storage on this disk) for a
# container with MEM_MB of random memory and a VOL_MB volume: the first
# push, a second push after 10% of the memory and of the volume changed
# (bytes sent against the first), a pull into an empty store, the same
# encrypted to a key, and the
# limits they run against (the disk: copying the store's chunks; loopback:
# curl of one blob). Run as root with the engine and CRIU up
# (make bench-registry).
set -euo pipefail
cd "$(dirname "$0")/.."
MEM_MB=${MEM_MB:-512}
VOL_MB=${VOL_MB:-256}
CKPT=${CKPT:-bin/ckpt}
NAME=ckpt-bench-reg
VOLUME=ckpt-bench-reg-data
IMAGE=ckpt-bench:latest
. bench/lib.sh
bench_more_cleanup() { [ -z "${regpid:-}" ] || kill "$regpid" 2>/dev/null || true; }
bench_init ckpt-bench-reg
command -v docker-registry >/dev/null || { echo "no docker-registry: run scripts/setup.sh" >&2; exit 1; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/registry.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: 127.0.0.1:$port}
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
regpid=$!
until curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1; do sleep 0.05; done
repo=127.0.0.1:$port/bench/app

now() { date +%s.%N; }
# moved LABEL CMD...: run CMD (push or pull --json), print its wall time,
# what it moved and its rate.
moved() {
	local label=$1; shift
	local t0 t1
	t0=$(now)
	"$@" --json >"$work/out" 2>"$work/err" || { cat "$work/err" "$work/out" >&2; exit 1; }
	t1=$(now)
	python3 - "$label" "$t0" "$t1" "$work/out" <<'PY'
import json, sys
label, t0, t1, out = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
r = [d for d in map(json.loads, open(out)) if d["type"] == "result"][-1]["transfer"]
s = t1 - t0
mib = r["bytesMoved"] / 2**20
print("%-32s %7.2f s  %8.1f MiB moved of %8.1f (%4d of %4d blobs skipped)  %7.1f MiB/s" % (label, s, mib, r["bytes"] / 2**20, r["blobsSkipped"], r["blobs"], mib / s))
open(out + ".moved", "a").write("%d\n" % r["bytesMoved"])
PY
}

echo "container: ${MEM_MB} MiB of memory, ${VOL_MB} MiB volume; $(nproc) cores; kernel $(uname -r)"
echo "engine $(docker version -f '{{.Server.Version}}'), $(docker-registry --version 2>&1 | sed -n 1p)"
echo
docker volume create "$VOLUME" >/dev/null
data=$(docker volume inspect -f '{{.Mountpoint}}' "$VOLUME")
for i in $(seq 1 64); do head -c $((VOL_MB * 1024 * 1024 / 64)) /dev/urandom >"$data/blob-$i"; done
docker run -d --name "$NAME" -p 127.0.0.1::8080 -v "$VOLUME:/data" -e APP_ALLOC_MB="$MEM_MB" "$IMAGE" >/dev/null
bench_wait "$NAME"
"$CKPT" save -q --leave-running "$NAME:first"
moved "push (first)" "$CKPT" push --plain-http "$NAME:first" "$repo:first"
curl -fsS -X POST "http://$(docker port "$NAME" 8080/tcp | sed -n 1p)/touch?pct=10" >/dev/null
for i in $(seq 1 6); do head -c $((VOL_MB * 1024 * 1024 / 64)) /dev/urandom >"$data/blob-$i"; done
sync
"$CKPT" save -q --leave-running "$NAME:second"
moved "push (10% changed)" "$CKPT" push --plain-http "$NAME:second" "$repo:second"
first=$(sed -n 1p "$work/out.moved"); second=$(sed -n 2p "$work/out.moved")
printf '%-32s %7.3f\n' "second push / first" "$(echo "$second / $first" | bc -l)"
CKPT_STORE=$work/other moved "pull (empty store)" "$CKPT" pull --plain-http "$repo:second"
CKPT_STORE=$work/other moved "pull (first, store has second)" "$CKPT" pull --plain-http "$repo:first"

# The same two pushes encrypted to an SSH key, into another repository.
ssh-keygen -q -t ed25519 -N '' -f "$work/key"
: >"$work/out.moved"
moved "encrypted push (first)" "$CKPT" push --plain-http -r "$work/key.pub" "$NAME:first" "$repo-sealed:first"
moved "encrypted push (10% changed)" "$CKPT" push --plain-http -r "$work/key.pub" "$NAME:second" "$repo-sealed:second"
first=$(sed -n 1p "$work/out.moved"); second=$(sed -n 2p "$work/out.moved")
printf '%-32s %7.3f\n' "encrypted second / first" "$(echo "$second / $first" | bc -l)"
CKPT_STORE=$work/third moved "encrypted pull (empty store)" "$CKPT" pull --plain-http -i "$work/key" "$repo-sealed:second"

echo
echo "limits"
chunks=$CKPT_STORE/chunks/sha256
total=$(du -sb "$chunks" | cut -f1)
sync; echo 3 >/proc/sys/vm/drop_caches
t0=$(now); cat "$chunks"/* >/dev/null; t1=$(now)
printf '%-32s %7.1f MiB/s (cold cache)\n' "disk: read the chunks" "$(echo "$total / 1048576 / ($t1 - $t0)" | bc -l)"
t0=$(now); cp -r "$chunks" "$work/copy"; sync -f "$work/copy"; t1=$(now)
printf '%-32s %7.1f MiB/s\n' "disk: copy + sync" "$(echo "$total / 1048576 / ($t1 - $t0)" | bc -l)"
head -c $((256 << 20)) /dev/urandom >"$work/big"
t0=$(now); python3 - "$port" "$work/big" <<'PY'
import socket, sys
# loopback: 256 MiB through one TCP connection to a socket that discards it
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
import threading
def sink():
    c, _ = s.accept()
    while c.recv(1 << 20): pass
threading.Thread(target=sink, daemon=True).start()
c = socket.create_connection(s.getsockname())
with open(sys.argv[2], "rb") as f:
    while True:
        b = f.read(1 << 20)
        if not b: break
        c.sendall(b)
c.close()
PY
t1=$(now)
printf '%-32s %7.1f MiB/s (one TCP stream)\n' "loopback" "$(echo "256 / ($t1 - $t0)" | bc -l)"
