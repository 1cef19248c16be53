#!/usr/bin/env bash
# bench/run.sh — how long ckpt save and resume take for a container with
# MEM_MB of memory and a VOL_MB volume, next to the engine's own
# `docker checkpoint create` + `tar` of the same volume, and how much memory
# ckpt itself uses. Run as root with the engine and CRIU up (make bench).
set -euo pipefail
cd "$(dirname "$0")/.."
MEM_MB=${MEM_MB:-512}
VOL_MB=${VOL_MB:-256}
CKPT=${CKPT:-bin/ckpt}
NAME=ckpt-bench
VOLUME=ckpt-bench-data
IMAGE=ckpt-bench:latest
. bench/lib.sh
bench_init ckpt-bench

# start: a container with MEM_MB of random (incompressible) memory and a
# volume holding VOL_MB of random data in 64 files.
start() {
	docker volume rm "$VOLUME" >/dev/null 2>&1 || true
	docker volume create "$VOLUME" >/dev/null
	local data
	data=$(docker volume inspect -f '{{.Mountpoint}}' "$VOLUME")
	for i in $(seq 1 64); do head -c $((VOL_MB * 1024 * 1024 / 64)) /dev/urandom >"$data/blob-$i"; done
	docker run -d --name "$NAME" -p 127.0.0.1::8080 -v "$VOLUME:/data" -e APP_ALLOC_MB="$MEM_MB" "$IMAGE" >/dev/null
	bench_wait "$NAME"
	sync
}

now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l | xargs printf '%.2f'; }
# timed LABEL CMD...: run CMD, print its wall time and peak RSS.
timed() {
	local label=$1; shift
	local t0 t1
	t0=$(now)
	/usr/bin/time -f '%M' -o "$work/rss" "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
	t1=$(now)
	printf '%-44s %8s s   peak RSS %6s MiB\n' "$label" "$(secs "$t0" "$t1")" "$(($(cat "$work/rss") / 1024))"
}

echo "container: ${MEM_MB} MiB of memory, ${VOL_MB} MiB volume; $(nproc) cores; kernel $(uname -r)"
echo "engine $(docker version -f '{{.Server.Version}}'), $(criu --version | sed -n 1p)"
echo

start
timed "ckpt save" "$CKPT" save -q "$NAME"
ck=$(ls "$CKPT_STORE/containers/$NAME/checkpoints")
python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print("  phases (ms):", ", ".join("%s %d" % (t["phase"], t["ms"]) for t in m["timings"]))' \
	"$CKPT_STORE/containers/$NAME/checkpoints/$ck/manifest.json"
echo "  checkpoint size: $(du -sh "$CKPT_STORE/containers/$NAME/checkpoints/$ck" | cut -f1)"
timed "ckpt resume (same container)" "$CKPT" resume -q "$NAME"
"$CKPT" rm --all "$NAME" >/dev/null
timed "ckpt save --leave-running" "$CKPT" save -q --leave-running "$NAME"
docker rm -f "$NAME" >/dev/null
docker volume rm "$VOLUME" >/dev/null
timed "ckpt resume (container and volume removed)" "$CKPT" resume -q "$NAME"
docker rm -f "$NAME" >/dev/null

echo
echo "baseline: the engine alone"
start
data=$(docker volume inspect -f '{{.Mountpoint}}' "$VOLUME")
mkdir -p "$work/base"
t0=$(now)
docker checkpoint create --checkpoint-dir "$work/base" "$NAME" c1 >/dev/null
t1=$(now)
tar -C "$data" -cf "$work/base/volume.tar" .
sync -f "$work/base/volume.tar"
t2=$(now)
printf '%-44s %8s s\n' "docker checkpoint create" "$(secs "$t0" "$t1")"
printf '%-44s %8s s\n' "tar of the volume (+ sync)" "$(secs "$t1" "$t2")"
printf '%-44s %8s s\n' "together" "$(secs "$t0" "$t2")"
id=$(docker inspect -f '{{.Id}}' "$NAME")
root=$(docker info -f '{{.DockerRootDir}}')
mkdir -p "$root/containers/$id/checkpoints"
cp -a "$work/base/c1" "$root/containers/$id/checkpoints/c1"
t0=$(now)
docker start --checkpoint c1 "$NAME" >/dev/null
t1=$(now)
printf '%-44s %8s s\n' "docker start --checkpoint (same container)" "$(secs "$t0" "$t1")"
rm -rf /tmp/ctrd-checkpoint*
