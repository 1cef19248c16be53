#!/usr/bin/env bash
# guest-import.sh DIR — after vagrant up on a fresh guest: import the
# checkpoints guest-export.sh left in DIR and resume them. A checkpoint made
# on another kernel or CRIU is refused, not resumed without its memory:
# remove its file from DIR to start fresh instead.
set -euo pipefail
dir=${1:-/vagrant/.ckpt-exports}
shopt -s nullglob
files=("$dir"/*.ckpt)
[ ${#files[@]} -gt 0 ] || exit 0
kernel=$(uname -r)
for f in "${files[@]}"; do
	container=$(basename "$f" .ckpt)
	if ! ckpt ls "$container" | grep -q complete; then
		ckpt import "$f"
	fi
	made=$(ckpt inspect --json "$container" | python3 -c 'import json,sys; h=json.loads(sys.stdin.readline())["report"]["host"]; print(h["kernel"], h["criuVersion"])')
	here="$kernel $(criu --version | sed -n 's/^Version: *//p')"
	if [ "$made" != "$here" ]; then
		echo "ckpt: $container was saved on kernel/CRIU $made, this guest has $here: not resumed (remove $f to start fresh)" >&2
		continue
	fi
	ckpt resume --require-memory --trust "$container" # our own export, from the synced folder
	rm -f "$f"
done
