# mirror.sh — sourced, not run: debian_mirror prints the Debian archive this
# machine's apt uses (the first URIs of a deb822 .sources stanza, or the first
# "deb" line of sources.list, that is not the security archive), so that no
# script names a mirror of its own. CKPT_VM_MIRROR overrides it.
debian_mirror() {
	if [ -n "${CKPT_VM_MIRROR:-}" ]; then
		echo "$CKPT_VM_MIRROR"
		return 0
	fi
	local uri
	uri=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
		awk 'tolower($1) == "uris:" { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }')
	if [ -z "$uri" ]; then
		uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
			awk '$1 == "deb" { i = 2; if ($i ~ /^\[/) while ($i !~ /\]$/) i++; if ($i ~ /^\[/ || $i ~ /\]$/) i++; if ($i !~ /security/) { print $i; exit } }')
	fi
	if [ -z "$uri" ]; then
		echo "no Debian archive in /etc/apt/sources.list{,.d}: set CKPT_VM_MIRROR to one" >&2
		return 1
	fi
	echo "${uri%/}"
}
