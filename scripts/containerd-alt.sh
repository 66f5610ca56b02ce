#!/usr/bin/env bash
# scripts/containerd-alt.sh [--version 1.7|2] [--refresh] [PREFIX]
#
# Provisions a newer containerd than the machine's own (Debian bookworm ships
# 1.6.20) WITHOUT installing any package: it fetches Debian's `containerd`
# package from a newer suite with `apt-get download`, using a temporary
# sources list and temporary apt lists/cache dirs (the machine's apt state and
# sources are not touched), and unpacks it with `dpkg -x` into PREFIX/root.
#
#   --version 1.7  (default) Debian trixie's containerd 1.7.x
#   --version 2    Debian sid's (unstable) containerd 2.x
#   --refresh      fetch again even if PREFIX already holds a working copy
#   PREFIX         default /opt/tend/containerd-alt (1.7), /opt/tend/containerd-alt-2 (2)
#
# Leaves PREFIX/bin with containerd, containerd-shim-runc-v2 and ctr of that
# version. Put PREFIX/bin FIRST in PATH: containerd execs its shim by name from
# PATH, and the shim execs `runc` from PATH (the machine's runc is used).
# If the binaries need a newer glibc than the machine has (not the case on
# bookworm: they need GLIBC_2.34, bookworm has 2.36), the suite's libc6 is
# unpacked too and PREFIX/bin gets wrapper scripts running the binaries
# through its ld.so; see fix_libc below for why that is only a fallback.
#
# (CONTAINERD_ALT_FORCE_LIBC=1 forces that fallback, to test it.)
# A 2.x daemon with a version = 2 config still loads CRI's
# io.containerd.cri.v1.images and io.containerd.cri.v1.runtime plugins when
# only io.containerd.grpc.v1.cri is disabled: disable those too.
#
# Prints exactly one line on stdout: PREFIX/bin. Progress goes to stderr.
# Idempotent: a second run with a working PREFIX does nothing but check it.
set -euo pipefail

say() { echo "containerd-alt: $*" >&2; }
die() { echo "containerd-alt: ERROR: $*" >&2; exit 1; }

want=1.7
refresh=""
prefix=""
while [ $# -gt 0 ]; do
	case "$1" in
	--version) want="${2:?--version needs 1.7 or 2}"; shift 2 ;;
	--version=*) want="${1#--version=}"; shift ;;
	--refresh) refresh=1; shift ;;
	-h | --help) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
	-*) die "unknown option $1" ;;
	*) [ -z "$prefix" ] || die "only one PREFIX"; prefix="$1"; shift ;;
	esac
done

case "$want" in
1.7 | 1) want=1.7; suite=trixie; verglob='1.7.*'; default_prefix=/opt/tend/containerd-alt ;;
2 | 2.*) want=2; suite=sid; verglob='2.*'; default_prefix=/opt/tend/containerd-alt-2 ;;
*) die "--version must be 1.7 or 2 (got $want)" ;;
esac
prefix="${prefix:-$default_prefix}"
case "$prefix" in /*) ;; *) prefix="$(pwd)/$prefix" ;; esac
prefix="${prefix%/}"
bins=(containerd containerd-shim-runc-v2 ctr)

[ "$(id -u)" -eq 0 ] || die "run as root"
for c in apt-get apt-cache dpkg dpkg-deb ldd; do
	command -v "$c" >/dev/null || die "$c not found (needs a Debian system)"
done

# works DIR: do DIR's binaries run and report the wanted version?
works() {
	local v
	for b in "${bins[@]}"; do [ -x "$1/bin/$b" ] || return 1; done
	v=$("$1/bin/containerd" --version 2>/dev/null | awk '{print $3}') || return 1
	# shellcheck disable=SC2053
	[[ "$v" == $verglob ]] || return 1
	"$1/bin/containerd-shim-runc-v2" -v >/dev/null 2>&1 || return 1
	"$1/bin/ctr" --version >/dev/null 2>&1 || return 1
}

if [ -z "$refresh" ] && works "$prefix"; then
	say "$prefix already holds containerd $("$prefix/bin/containerd" --version | awk '{print $3}'); nothing to do (--refresh to fetch again)"
	echo "$prefix/bin"
	exit 0
fi

tmp=$(mktemp -d /tmp/containerd-alt.XXXXXX)
stage=""
cleanup() {
	rm -rf "$tmp"
	[ -z "$stage" ] || rm -rf "$stage"
}
trap cleanup EXIT

# --- the mirror: the machine's own Debian mirror -------------------------------
mirror=""
for f in /etc/apt/sources.list.d/*.sources; do
	[ -f "$f" ] || continue
	# deb822 stanzas: the first URIs whose Suites are not -security ones.
	mirror=$(awk '
		/^[[:space:]]*$/ { if (uri != "" && !sec) { print uri; exit } uri = ""; sec = 0; next }
		tolower($1) == "uris:" { uri = $2 }
		tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i ~ /-security$/) sec = 1 }
		END { if (uri != "" && !sec) print uri }' "$f" | head -n 1)
	[ -n "$mirror" ] && break
done
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
	mirror=$(awk '$1 == "deb" {
		for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/ && $i ~ /:\/\//) { if ($(i + 1) !~ /-security$/) { print $i; exit } }
	}' /etc/apt/sources.list | head -n 1)
fi
mirror="${mirror:-http://deb.debian.org/debian}"
mirror="${mirror%/}"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -f "$keyring" ] || die "$keyring missing (package debian-archive-keyring)"
say "mirror $mirror, suite $suite"

# --- temporary apt: own sources, lists and cache; nothing of the machine's -----
mkdir -p "$tmp/parts" "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/debs"
echo "deb [signed-by=$keyring] $mirror $suite main" >"$tmp/sources.list"
apt_opts=(
	-o "Dir::Etc::SourceList=$tmp/sources.list"
	-o "Dir::Etc::SourceParts=$tmp/parts"
	-o "Dir::State::Lists=$tmp/lists"
	-o "Dir::Cache=$tmp/cache"
	-o "APT::Sandbox::User=root"
	-o "Acquire::Languages=none"
	# Only the Packages index: no DEP-11, Contents or translations.
	-o "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false"
	-o "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false"
	-o "Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false"
	-o "Acquire::IndexTargets::deb::DEP-11-icons-hidpi::DefaultEnabled=false"
	-o "Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false"
	-o "Acquire::IndexTargets::deb::Contents-udeb::DefaultEnabled=false"
	-o "Acquire::IndexTargets::deb::Translations::DefaultEnabled=false"
)
say "apt-get update (temporary lists in $tmp)"
apt-get "${apt_opts[@]}" -q update >&2 || die "apt-get update of $suite failed"

# candidate VERSION of PACKAGE in the temporary lists (the suite's only source)
candidate() {
	apt-cache "${apt_opts[@]}" policy "$1" 2>/dev/null |
		awk -v m="$mirror" '
			/^     [^ ]/ || /^ \*\*\* / { v = ($1 == "***") ? $2 : $1; next }
			index($0, m) && v != "" { print v; exit }'
}
ver=$(candidate containerd)
[ -n "$ver" ] || die "no containerd package in $suite"
# shellcheck disable=SC2053
[[ "$ver" == $verglob ]] || die "$suite's containerd is $ver, not $want.x"
say "fetching containerd $ver from $suite"
(cd "$tmp/debs" && apt-get "${apt_opts[@]}" -q download "containerd=$ver" >&2) || die "apt-get download containerd=$ver failed"

# --- unpack into a staging dir, then swap it in ---------------------------------
mkdir -p "$(dirname "$prefix")"
stage="$prefix.new.$$"
rm -rf "$stage"
mkdir -p "$stage/root" "$stage/bin"
dpkg -x "$tmp"/debs/containerd_*.deb "$stage/root"
for b in "${bins[@]}"; do
	[ -x "$stage/root/usr/bin/$b" ] || die "package lacks /usr/bin/$b"
done
echo "containerd $ver $suite $mirror" >"$stage/PACKAGE"

# needs_libc FILE: does FILE fail to load with the machine's libc?
needs_libc() {
	local out
	out=$(ldd "$1" 2>&1) || true
	grep -Eq 'not found|version `GLIBC' <<<"$out"
}

# fix_libc: the binaries need a newer glibc than the machine's. Unpack the
# suite's libc6 into PREFIX/libc and make PREFIX/bin/* wrapper scripts that
# exec the binary through the unpacked ld.so with --library-path.
# CAVEAT (why this is only a fallback; bookworm does not need it): the shim
# re-execs itself through os.Executable(), i.e. /proc/self/exe, which under
# such a wrapper is ld.so, not the shim: so the machine's own shim is used
# instead when it runs (the daemon's restart behaviour, which is what a newer
# containerd is wanted for, is the daemon's, not the shim's). Patching the
# binaries instead (patchelf --set-interpreter --set-rpath) was tried:
# patchelf 0.18's relayout leaves these Go binaries segfaulting at start.
fix_libc() {
	local v
	v=$(candidate libc6)
	[ -n "$v" ] || die "no libc6 in $suite"
	(cd "$tmp/debs" && apt-get "${apt_opts[@]}" -q download "libc6=$v" >&2) || die "apt-get download libc6 failed"
	mkdir -p "$stage/libc"
	dpkg -x "$tmp"/debs/libc6_*.deb "$stage/libc"
	local ld="$stage/libc/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
	[ -e "$ld" ] || ld="$stage/libc/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
	[ -e "$ld" ] || die "no ld-linux-x86-64.so.2 in $suite's libc6"
	local libdir
	libdir=$(dirname "$(readlink -f "$ld")")
	# Final paths (after the swap), not the staging ones.
	local fld="$prefix/libc/${ld#"$stage/libc/"}" flib="$prefix/libc/${libdir#"$stage/libc/"}"
	local sys_shim=/usr/bin/containerd-shim-runc-v2
	for b in "${bins[@]}"; do
		if [ "$b" = containerd-shim-runc-v2 ] && [ -x "$sys_shim" ] && ! needs_libc "$sys_shim"; then
			# The machine's own shim (1.6 on bookworm) speaks the same shim
			# API: tried with the 1.7 and 2.1 daemons, containers run.
			ln -sfn "$sys_shim" "$stage/bin/$b"
			say "WARNING: using the machine's $sys_shim ($("$sys_shim" -v 2>/dev/null | awk '/Version/ {print $2; exit}')) as the shim: the suite's needs ld.so wrapping, which breaks its self re-exec"
			continue
		fi
		printf '#!/bin/sh\n# written by scripts/containerd-alt.sh: %s needs glibc from %s\nexec %q --library-path %q %q "$@"\n' \
			"$b" "$suite" "$fld" "$flib" "$prefix/root/usr/bin/$b" >"$stage/bin/$b"
		chmod 755 "$stage/bin/$b"
	done
	[ -L "$stage/bin/containerd-shim-runc-v2" ] ||
		say "WARNING: wrapper mode for the shim: its self re-exec (os.Executable) sees ld.so; containers will fail to start"
}

libc_note="the machine's libc ($(ldd --version | head -n 1 | awk '{print $NF}'))"
need=""
for b in "${bins[@]}"; do
	if [ -n "${CONTAINERD_ALT_FORCE_LIBC:-}" ] || needs_libc "$stage/root/usr/bin/$b"; then need=1; fi
done
if [ -n "$need" ]; then
	say "binaries need a newer glibc than the machine's: unpacking $suite's libc6"
	fix_libc
	libc_note="$suite's libc6 in $prefix/libc"
else
	for b in "${bins[@]}"; do ln -sfn "../root/usr/bin/$b" "$stage/bin/$b"; done
fi

# --- swap in and check ---------------------------------------------------------
rm -rf "$prefix"
mv "$stage" "$prefix"
stage=""
works "$prefix" || { rm -rf "$prefix"; die "the binaries in $prefix/bin do not run (see: ldd $prefix/root/usr/bin/containerd)"; }
command -v runc >/dev/null || say "WARNING: no runc in PATH: the shim needs one (apt-get install runc)"
say "containerd $("$prefix/bin/containerd" --version | awk '{print $3}') in $prefix/bin, using $libc_note"
say "use: PATH=$prefix/bin:\$PATH (first: containerd finds its shim in PATH)"
echo "$prefix/bin"
