#!/usr/bin/env bash
# bench/perf.sh — ckpt side by side with its peers, in one run on this
# machine (make perf): raw CRIU on the host (the limit), podman (Debian
# sid's, in its own mount and network namespace: scripts/engines.sh's
# "podman" root), the engine alone (docker checkpoint create / start
# --checkpoint) and ckpt, for a test app holding each of SIZES MiB of random
# memory and a VOL_MB volume; medians of RUNS runs, ratios, and ckpt's peak
# RSS. Then a second save after 10% of memory and volume changed, N small
# containers under one shutdown deadline (bench/hooks.sh), and the time to a
# first answer after a resume against a cold start, for an app that spends
# WARM seconds warming a cache. Writes the tables to OUT
# (docs/performance.md) and prints them. Run as root with the engine and
# CRIU up; takes about 15 minutes with the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-64 512 2048}
VOL_MB=${VOL_MB:-256}
RUNS=${RUNS:-3}
WARM=${WARM:-10}
SMALL=${SMALL:-20}
OUT=${OUT:-docs/performance.md}
CKPT=${CKPT:-bin/ckpt}
NAME=ckpt-perf
VOLUME=ckpt-perf-data
IMAGE=ckpt-perf:latest
RAW_PORT=18090
POD_PORT=18091
. bench/lib.sh
# The commit measured, named when the run starts: the code may change
# while it runs (bin/ckpt was built before).
commit="ckpt at commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
git diff --quiet HEAD -- . ':!docs' 2>/dev/null || commit+=" with changes not committed"
bench_init ckpt-perf
pod() { scripts/engines.sh exec podman env PODMAN_IGNORE_CGROUPSV1_WARNING=1 podman "$@"; }
perf_cleanup() {
	[ -z "${raw_pid:-}" ] || kill -9 "$raw_pid" 2>/dev/null || true
	pod rm -f "$NAME" >/dev/null 2>&1 || true
	pod volume rm -f "$VOLUME" >/dev/null 2>&1 || true
	scripts/engines.sh stop podman || true
	bench_cleanup
}
trap perf_cleanup EXIT

say() { echo "perf: $*" >&2; }
now() { date +%s.%N; }
# timed KEY CMD...: run CMD, add its wall time in seconds to KEY's samples.
declare -A samples
timed() {
	local key=$1 t0 t1
	shift
	t0=$(now)
	"$@" >"$work/out" 2>"$work/err" || { say "failed: $*"; cat "$work/out" "$work/err" >&2; exit 1; }
	t1=$(now)
	samples[$key]+="$(echo "$t1 - $t0" | bc -l) "
}
median() { tr ' ' '\n' <<<"${samples[$1]:-}" | sed '/^$/d' | sort -g | awk '{a[NR]=$1} END {if (NR) printf "%.2f", a[int((NR+1)/2)]; else print "-"}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'; }
plus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a + b }'; }

# state URL-PREFIX: the app's id, waiting until it answers.
wait_id() {
	local get=$1 i
	for i in $(seq 1 600); do
		if out=$($get 2>/dev/null) && [ -n "$out" ]; then
			python3 -c 'import json,sys; print(json.loads(sys.stdin.read().split("\r\n\r\n")[-1])["id"])' <<<"$out" && return 0
		fi
		sleep 0.1
	done
	say "the app did not answer ($get)"
	exit 1
}
raw_get() { curl -fsS "http://127.0.0.1:$RAW_PORT/state"; }
# pod_get: GET /state in podman's network namespace, which has no curl.
pod_get() {
	local r
	r=$(scripts/engines.sh exec podman bash -c "exec 3<>/dev/tcp/127.0.0.1/$POD_PORT && printf 'GET /state HTTP/1.0\r\n\r\n' >&3 && cat <&3") &&
		grep -q '^HTTP/1.. 200' <<<"$r" && printf '%s' "$r"
}
dock_get() { curl -fsS "http://$(docker port "$NAME" 8080/tcp | sed -n 1p)/state"; }
same() { [ "$1" = "$2" ] || { say "$3: memory was not restored (id $1 before, $2 after)"; exit 1; }; }

# fill DIR: VOL_MB of random data in 64 files.
fill() { for i in $(seq 1 64); do head -c $((VOL_MB * 1024 * 1024 / 64)) /dev/urandom >"$1/blob-$i"; done; }

say "podman's root (Debian sid, scripts/engines.sh build podman)"
scripts/engines.sh start podman
tar -C "$work" -c app | pod import --change 'ENTRYPOINT ["/app"]' - "$IMAGE" >/dev/null

raw() {
	local mb=$1 d=$work/raw id pid
	rm -rf "$d" && mkdir -p "$d/images" "$d/data"
	fill "$d/data"
	(cd "$d" && setsid env APP_ALLOC_MB="$mb" APP_LISTEN=127.0.0.1:$RAW_PORT APP_DATA="$d/data" "$work/app" </dev/null >/dev/null 2>&1 &)
	id=$(wait_id raw_get)
	pid=$(curl -fsS "http://127.0.0.1:$RAW_PORT/state" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
	raw_pid=$pid
	sync
	timed "$mb/raw dump" criu dump -t "$pid" -D "$d/images" --tcp-established -o dump.log
	timed "$mb/raw tar" sh -c "tar -C '$d/data' -cf '$d/volume.tar' . && sync -f '$d/volume.tar'"
	timed "$mb/raw verify" sh -c "sha256sum '$d'/images/*.img '$d/volume.tar'"
	rm -rf "$d/data" && mkdir "$d/data"
	timed "$mb/raw untar" tar -C "$d/data" -xf "$d/volume.tar"
	timed "$mb/raw restore" criu restore -D "$d/images" -d --tcp-established -o restore.log
	same "$id" "$(wait_id raw_get)" "raw CRIU"
	kill -9 "$pid" 2>/dev/null || true
	raw_pid=
}

podman_run() {
	local mb=$1
	pod rm -f "$NAME" >/dev/null 2>&1 || true
	pod volume rm -f "$VOLUME" >/dev/null 2>&1 || true
	pod volume create "$VOLUME" >/dev/null
	scripts/engines.sh exec podman sh -c "for i in \$(seq 1 64); do head -c $((VOL_MB * 1024 * 1024 / 64)) /dev/urandom >\"\$1/blob-\$i\"; done" sh "$(pod volume inspect -f '{{.Mountpoint}}' "$VOLUME")"
	pod run -d --runtime runc --name "$NAME" -p 127.0.0.1:$POD_PORT:8080 -v "$VOLUME:/data" -e APP_ALLOC_MB="$mb" "$IMAGE" >/dev/null
	wait_id pod_get
}

podman() {
	local mb=$1 d=$work/podman id
	rm -rf "$d" && mkdir -p "$d"
	id=$(podman_run "$mb")
	sync
	timed "$mb/podman checkpoint" pod container checkpoint "$NAME"
	timed "$mb/podman restore" pod container restore "$NAME"
	same "$id" "$(wait_id pod_get)" "podman restore"
	timed "$mb/podman export" pod container checkpoint --compress none --export "/tmp/perf.tar" "$NAME"
	pod rm -f "$NAME" >/dev/null
	pod volume rm -f "$VOLUME" >/dev/null
	timed "$mb/podman import" pod container restore --import "/tmp/perf.tar"
	same "$id" "$(wait_id pod_get)" "podman restore --import"
	pod rm -f "$NAME" >/dev/null
	pod volume rm -f "$VOLUME" >/dev/null 2>&1 || true
	scripts/engines.sh exec podman rm -f /tmp/perf.tar
}

docker_run() {
	local mb=$1
	shift
	docker rm -f "$NAME" >/dev/null 2>&1 || true
	docker volume rm "$VOLUME" >/dev/null 2>&1 || true
	docker volume create "$VOLUME" >/dev/null
	fill "$(docker volume inspect -f '{{.Mountpoint}}' "$VOLUME")"
	docker run -d --name "$NAME" -p 127.0.0.1::8080 -v "$VOLUME:/data" -e APP_ALLOC_MB="$mb" "$@" "$IMAGE" >/dev/null
	wait_id dock_get
}

engine() {
	local mb=$1 d=$work/engine id cid root
	rm -rf "$d" && mkdir -p "$d"
	id=$(docker_run "$mb")
	sync
	timed "$mb/engine checkpoint" docker checkpoint create --checkpoint-dir "$d" "$NAME" c1
	cid=$(docker inspect -f '{{.Id}}' "$NAME")
	root=$(docker info -f '{{.DockerRootDir}}')
	mkdir -p "$root/containers/$cid/checkpoints"
	mv "$d/c1" "$root/containers/$cid/checkpoints/c1"
	timed "$mb/engine start" docker start --checkpoint c1 "$NAME"
	same "$id" "$(wait_id dock_get)" "docker start --checkpoint"
	rm -rf "$root/containers/$cid/checkpoints/c1" /tmp/ctrd-checkpoint*
}

# ckpt_timed KEY ARGS...: ckpt ARGS timed, its peak RSS kept.
declare -A rss
ckpt_timed() {
	local key=$1
	shift
	timed "$key" /usr/bin/time -f '%M' -o "$work/rss" "$CKPT" "$@" -q
	rss[$key]=$(( $(cat "$work/rss") / 1024 > ${rss[$key]:-0} ? $(cat "$work/rss") / 1024 : ${rss[$key]:-0} ))
}

ckpt() {
	local mb=$1 id
	id=$(docker_run "$mb")
	sync
	ckpt_timed "$mb/ckpt save" save "$NAME"
	ckpt_timed "$mb/ckpt resume" resume "$NAME"
	same "$id" "$(wait_id dock_get)" "ckpt resume"
	ckpt_timed "$mb/ckpt save" save "$NAME"
	docker rm -f "$NAME" >/dev/null
	docker volume rm "$VOLUME" >/dev/null
	ckpt_timed "$mb/ckpt resume removed" resume "$NAME"
	same "$id" "$(wait_id dock_get)" "ckpt resume into a removed container"
	# A second save after 10% of the memory and of the volume changed:
	# what it writes against the first.
	"$CKPT" rm --all "$NAME" >/dev/null
	local before first second data
	before=$(du -sb "$CKPT_STORE" | cut -f1)
	ckpt_timed "$mb/ckpt save first" save --leave-running "$NAME"
	first=$(( $(du -sb "$CKPT_STORE" | cut -f1) - before ))
	curl -fsS -X POST "http://$(docker port "$NAME" 8080/tcp | sed -n 1p)/touch?pct=10"
	data=$(docker volume inspect -f '{{.Mountpoint}}' "$VOLUME")
	for i in $(seq 1 6); do head -c $((VOL_MB * 1024 * 1024 / 64)) /dev/urandom >"$data/blob-$i"; done
	sync
	before=$(du -sb "$CKPT_STORE" | cut -f1)
	ckpt_timed "$mb/ckpt save second" save --leave-running "$NAME"
	second=$(( $(du -sb "$CKPT_STORE" | cut -f1) - before ))
	samples["$mb/written first"]+="$first "
	samples["$mb/written second"]+="$second "
	docker rm -f "$NAME" >/dev/null
	"$CKPT" rm --all "$NAME" >/dev/null
}

for mb in $SIZES; do
	for run in $(seq 1 "$RUNS"); do
		say "$mb MiB, run $run of $RUNS"
		raw "$mb"
		podman "$mb"
		engine "$mb"
		ckpt "$mb"
	done
done

say "time to a first answer: an app that warms a cache for $WARM s"
for run in $(seq 1 "$RUNS"); do
	docker_run 64 -e APP_WARM_SECONDS="$WARM" >/dev/null
	"$CKPT" save "$NAME" -q >/dev/null
	timed "first answer resume" sh -c "'$CKPT' resume '$NAME' -q && until curl -fsS http://\$(docker port '$NAME' 8080/tcp | sed -n 1p)/state >/dev/null 2>&1; do sleep 0.05; done"
	"$CKPT" rm --all "$NAME" >/dev/null
	docker rm -f "$NAME" >/dev/null
	timed "first answer cold" sh -c "docker run -d --name '$NAME' -p 127.0.0.1::8080 -v '$VOLUME:/data' -e APP_ALLOC_MB=64 -e APP_WARM_SECONDS=$WARM '$IMAGE' >/dev/null && until curl -fsS http://\$(docker port '$NAME' 8080/tcp | sed -n 1p)/state >/dev/null 2>&1; do sleep 0.05; done"
	docker rm -f "$NAME" >/dev/null
done

say "$SMALL small containers through the hooks"
# A failure there leaves its row out, not the tables measured before it.
if ! hooks=$(bench/hooks.sh "$SMALL" | tail -n1); then
	hooks="(the hooks benchmark failed: bench/hooks.sh's output above)"
	say "$hooks"
fi

versions="kernel $(uname -r), $(nproc) cores; $(criu --version | sed -n 1p | sed 's/Version: /CRIU /'); Docker $(docker version -f '{{.Server.Version}}') on the host; podman $(pod version -f '{{.Client.Version}}') with runc $(scripts/engines.sh exec podman runc --version | sed -n 1p | awk '{print $3}') (Debian sid)"
# sum KEY...: the sum of the keys' medians.
sum() { local t=0 k; for k in "$@"; do t=$(plus "$t" "$(median "$k")"); done; echo "$t"; }
{
	echo "# Performance"
	echo
	echo "Measured by \`make perf\` (bench/perf.sh) on $(date -u +%Y-%m-%d): $versions. $commit."
	echo "Medians of $RUNS runs, in seconds. The app (internal/testapp) holds the"
	echo "given random, incompressible memory and a ${VOL_MB} MiB volume in 64 files."
	echo
	echo "- **raw CRIU**: the same app run as a plain process on the host;"
	echo "  \`criu dump\` and \`criu restore\` alone, and with the work ckpt does"
	echo "  besides: the volume's directory archived with \`tar\` (and synced),"
	echo "  and on the way back the images and the archive hashed (\`sha256sum\`)"
	echo "  and the archive unpacked. That is the limit."
	echo "- **podman**: \`container checkpoint\` / \`restore\` in place (memory"
	echo "  only), and \`checkpoint --export\` (memory, root file system changes and"
	echo "  volumes in one uncompressed file) / \`restore --import\` into a new"
	echo "  container."
	echo "- **engine**: \`docker checkpoint create\` / \`docker start --checkpoint\`"
	echo "  (memory only, through containerd's content store)."
	echo "- **ckpt**: \`ckpt save\` (memory, volume and writable layer into the"
	echo "  store, verified on resume) / \`ckpt resume\` into the same container and"
	echo "  into a removed container and volume."
	echo
	echo "| memory | raw dump / restore | raw dump + tar / restore + verify + untar | podman checkpoint / restore | podman export / import | engine checkpoint / start | **ckpt save** | **ckpt resume** same / removed | ckpt peak RSS |"
	echo "|---|---|---|---|---|---|---|---|---|"
	for mb in $SIZES; do
		printf '| %s MiB | %s / %s | %s / %s | %s / %s | %s / %s | %s / %s | **%s** | **%s** / **%s** | %s MiB |\n' "$mb" \
			"$(median "$mb/raw dump")" "$(median "$mb/raw restore")" \
			"$(sum "$mb/raw dump" "$mb/raw tar")" "$(sum "$mb/raw restore" "$mb/raw verify" "$mb/raw untar")" \
			"$(median "$mb/podman checkpoint")" "$(median "$mb/podman restore")" \
			"$(median "$mb/podman export")" "$(median "$mb/podman import")" \
			"$(median "$mb/engine checkpoint")" "$(median "$mb/engine start")" \
			"$(median "$mb/ckpt save")" "$(median "$mb/ckpt resume")" "$(median "$mb/ckpt resume removed")" \
			"$(printf '%s\n' "${rss["$mb/ckpt save"]}" "${rss["$mb/ckpt resume"]}" "${rss["$mb/ckpt resume removed"]}" | sort -n | tail -n1)"
	done
	echo
	echo "Ratios against the speed targets (bench/README.md; resume: into a removed container and"
	echo "volume, as podman's import is):"
	echo
	echo "| memory | save / podman export (<= 1.0) | save / (raw dump + tar) (<= 1.5) | save / raw dump alone | resume / podman import (<= 1.0) | resume / (raw restore + verify + untar) (<= 3) |"
	echo "|---|---|---|---|---|---|"
	for mb in $SIZES; do
		printf '| %s MiB | %s | %s | %s | %s | %s |\n' "$mb" \
			"$(ratio "$(median "$mb/ckpt save")" "$(median "$mb/podman export")")" \
			"$(ratio "$(median "$mb/ckpt save")" "$(sum "$mb/raw dump" "$mb/raw tar")")" \
			"$(ratio "$(median "$mb/ckpt save")" "$(median "$mb/raw dump")")" \
			"$(ratio "$(median "$mb/ckpt resume removed")" "$(median "$mb/podman import")")" \
			"$(ratio "$(median "$mb/ckpt resume removed")" "$(sum "$mb/raw restore" "$mb/raw verify" "$mb/raw untar")")"
	done
	echo
	echo "## A second save after 10% changed"
	echo
	echo "\`ckpt save --leave-running\`, then 10% of the app's memory and 6 of the"
	echo "volume's 64 files rewritten, then the same save again: bytes the store grew"
	echo "by, and time (medians)."
	echo
	echo "| memory | first save | second save | second / first (bytes; target <= 0.15) |"
	echo "|---|---|---|---|"
	for mb in $SIZES; do
		printf '| %s MiB | %s MiB in %s s | %s MiB in %s s | %s |\n' "$mb" \
			"$(awk -v b="$(median "$mb/written first")" 'BEGIN { printf "%.0f", b / 1048576 }')" "$(median "$mb/ckpt save first")" \
			"$(awk -v b="$(median "$mb/written second")" 'BEGIN { printf "%.0f", b / 1048576 }')" "$(median "$mb/ckpt save second")" \
			"$(ratio "$(median "$mb/written second")" "$(median "$mb/written first")")"
	done
	echo
	echo "## Time to a first answer"
	echo
	echo "An app that spends $WARM s warming a cache before it answers (64 MiB):"
	echo "from \`ckpt resume\` to its first answer, $(median "first answer resume") s; from a cold"
	echo "start (\`docker run\`) to its first answer, $(median "first answer cold") s."
	echo
	echo "## Many small containers"
	echo
	echo "$SMALL containers of about 1 MiB each, all hot, through the host hooks"
	echo "(bench/hooks.sh; the shutdown hook under one deadline): $hooks"
} >"$work/perf.md"
cp "$work/perf.md" "$OUT"
cat "$OUT"
