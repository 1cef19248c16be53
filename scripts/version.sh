#!/usr/bin/env bash
# version.sh — prints ckpt's version, one form for both the binary
# (ckpt --version, through the Makefile's LDFLAGS) and the Debian package
# (make deb), so that the two always agree. It is a valid Debian version:
#   - at a tag vX.Y.Z (or X.Y.Z):           X.Y.Z
#   - N commits after such a tag:           X.Y.Z+git<date>.<time>.<hash>
#   - without a version tag (as now):       0.0~git<date>.<time>.<hash>
# <date>.<time> is the commit's, in UTC, so that later commits sort later;
# +dirty is added when the working tree has changes. Outside a git
# checkout it prints 0.0~unknown.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! git rev-parse --git-dir >/dev/null 2>&1; then
	echo 0.0~unknown
	exit 0
fi
hash=$(git rev-parse --short=7 HEAD)
stamp=$(TZ=UTC0 git log -1 --format=%cd --date=format-local:%Y%m%d.%H%M%S HEAD)
dirty=
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then dirty=+dirty; fi

if tag=$(git describe --tags --abbrev=0 --match 'v[0-9]*' --match '[0-9]*' 2>/dev/null) &&
	[[ "${tag#v}" =~ ^[0-9]+(\.[0-9]+)*$ ]]; then
	base=${tag#v}
	if [ "$(git rev-list --count "$tag..HEAD")" = 0 ]; then
		echo "$base$dirty"
	else
		echo "$base+git$stamp.$hash$dirty"
	fi
else
	echo "0.0~git$stamp.$hash$dirty"
fi
