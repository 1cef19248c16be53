#!/usr/bin/env bash
# copyright.sh — prints the copyright file of the ckpt package (Debian's
# machine-readable format 1.0): packaging/copyright.head, then a paragraph
# for the Go standard library and one for each Go module compiled into
# /usr/bin/ckpt, with the copyright lines and the license text of that
# module's own files (and its NOTICE, which the Apache License asks to pass
# on). The full text of the Apache License 2.0 is not repeated: Debian has it
# in /usr/share/common-licenses. A license it cannot name stops the build.
# Run by scripts/deb.sh, from the module cache that built ckpt.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}

die() { echo "copyright.sh: error: $*" >&2; exit 1; }

# body formats text as the continuation lines of a field, leading blank
# lines left out.
body() { sed -e 's/[[:space:]]*$//' | sed -e '/./,$!d' -e 's/^$/./' -e 's/^/ /'; }

# without_apache replaces each full Apache License 2.0 (its terms, and the
# appendix after them) with a pointer to Debian's copy.
without_apache() {
	awk '
	state == 0 && /^[[:space:]]*Apache License[[:space:]]*$/ {
		print "The Apache License, Version 2.0: on Debian systems its full text is in"
		print "/usr/share/common-licenses/Apache-2.0."
		state = 1; next
	}
	state == 1 { if (/END OF TERMS AND CONDITIONS/) state = 2; next }
	state == 2 && /^[[:space:]]*$/ { next }
	state == 2 && /APPENDIX: How to apply the Apache License/ { state = 3; next }
	state == 2 { state = 0 }
	state == 3 { if (/limitations under the License\./) state = 0; next }
	{ print }
	END { if (state == 1 || state == 3) exit 1 }'
}

# names prints the short names of the licenses in a license text.
names() {
	local text=$1 n=()
	if grep -q 'Apache License' <<<"$text" && grep -q 'Version 2\.0' <<<"$text"; then n+=(Apache-2.0); fi
	if grep -q 'Permission is hereby granted, free of charge' <<<"$text"; then n+=(Expat); fi
	if grep -q 'Redistribution and use in source and binary forms' <<<"$text"; then
		if grep -Eq 'Neither the name|names of (its|the) contributors|name of the copyright holder' <<<"$text"; then n+=(BSD-3-Clause); else n+=(BSD-2-Clause); fi
	fi
	if grep -q 'Permission to use, copy, modify, and/or distribute' <<<"$text"; then n+=(ISC); fi
	if grep -q 'Mozilla Public License' <<<"$text"; then n+=(MPL-2.0); fi
	[ ${#n[@]} -gt 0 ] || return 1
	local out=${n[0]} x
	for x in "${n[@]:1}"; do out+=" and $x"; done
	echo "$out"
}

# holders prints the copyright lines of files.
holders() {
	cat "$@" | { grep -E '^[[:space:]>]*Copyright[[:space:]]+(\([cC]\)|©|[0-9])' || true; } |
		sed -e 's/^[[:space:]>]*//' -e 's/[[:space:]]*$//' | awk '!seen[$0]++'
}

# paragraph FILES NAME VERSION DIR: the paragraph of the module NAME at
# VERSION, whose files are in DIR.
paragraph() {
	local field=$1 name=$2 version=$3 dir=$4 files=() notices=() f text lic who
	for f in "$dir"/*; do
		case "${f##*/}" in
		LICENSE | LICENSE.txt | LICENSE.md | LICENCE | COPYING) files+=("$f") ;;
		NOTICE | NOTICE.txt | NOTICE.md) notices+=("$f") ;;
		esac
	done
	[ ${#files[@]} -gt 0 ] || die "$name $version has no license file in $dir: add what applies to packaging/copyright.sh"
	text=$(cat "${files[@]}")
	lic=$(names "$text") || die "cannot tell the license of $name $version (${files[*]}): add it to packaging/copyright.sh"
	who=$(holders "${files[@]}" ${notices[@]+"${notices[@]}"})
	[ -n "$who" ] || who="the authors of $name (its license file names no holder)"
	echo
	echo "Files: $field"
	echo "Copyright: $(head -n1 <<<"$who")"
	tail -n +2 <<<"$who" | body
	echo "License: $lic"
	without_apache <<<"$text" | body || die "$name $version: an Apache License text without its end"
	if [ ${#notices[@]} -gt 0 ]; then
		echo "Comment: The NOTICE of $name $version:"
		cat "${notices[@]}" | body
	fi
}

cat packaging/copyright.head
goroot=$("$GO" env GOROOT)
goversion=$("$GO" env GOVERSION)
paragraph "$goversion/src/*" "the Go standard library and runtime" "$goversion" "$goroot"
"$GO" list -deps -f '{{with .Module}}{{if not .Main}}{{.Path}} {{.Version}} {{.Dir}}{{end}}{{end}}' ./cmd/ckpt |
	sort -u | while read -r path version dir; do
	[ -n "$dir" ] || die "$path $version is not in the module cache: run go mod download"
	paragraph "$path@$version/*" "$path" "$version" "$dir"
done
