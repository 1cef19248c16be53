#!/usr/bin/env bash
# guest-export.sh DIR — before vagrant destroy: save every container the
# policy selects, then export each container's newest checkpoint into DIR
# (the synced folder), so that the next vagrant up can bring them back.
set -euo pipefail
dir=${1:-/vagrant/.ckpt-exports}
ckpt hook run shutdown
install -d -m 0700 "$dir"
rm -f "$dir"/*.ckpt
python3 - "$dir" <<'PY'
import json, subprocess, sys
d = sys.argv[1]
latest = {}
for line in subprocess.check_output(["ckpt", "ls", "--json"], text=True).splitlines():
    c = json.loads(line)  # one checkpoint per item line (docs/json.md)
    if c["type"] == "item" and c["state"] == "complete":
        latest[c["container"]] = c["ref"]   # ls lists oldest first
for container, ref in sorted(latest.items()):
    subprocess.check_call(["ckpt", "export", "-o", f"{d}/{container}.ckpt", ref])
PY
