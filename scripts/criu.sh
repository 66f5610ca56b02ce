#!/usr/bin/env bash
# scripts/criu.sh — provision a CRIU that really checkpoints and restores on this host.
#
# Usage: scripts/criu.sh [--force] [--selftest] [PREFIX]      (PREFIX default: /opt/tend/criu)
#
#   --force     ignore a working criu already on PATH and (re)provision the private one in PREFIX
#   --selftest  afterwards, run a container with runc, checkpoint it, restore it and check that
#               it continues where it stopped (needs runc and busybox)
#
# Progress goes to stderr. The LAST line on stdout is the directory to put first in PATH
# (the private PREFIX/bin, or the directory of a system criu that works), so callers can do
#     CRIU_PATH=$(scripts/criu.sh | tail -1)
#     PATH="$CRIU_PATH:$PATH" containerd ...      # the shim and runc inherit PATH and run `criu swrk`
#
# Why this exists: Debian bookworm's criu 3.17 cannot dump on newer kernels ("vdso: Unexpected
# rt vDSO area bounds"; depending on the host `criu check` passes anyway or fails the same way).
# criu 4.1.1 from Debian trixie works, but needs trixie's libc. We do not install it (that would drag in a libc upgrade): the .debs are unpacked
# into PREFIX/root with `dpkg -x`, and PREFIX/bin/criu is a wrapper that starts criu through the
# unpacked glibc's own dynamic loader with --library-path. Nothing outside PREFIX is changed except
# installing Debian's iptables (and iproute2) when missing: criu execs iptables-restore to lock the
# network during a dump, and ip to save network namespaces.
#
# Idempotent: a second run finds PREFIX/bin/criu working (real dump+restore) and only prints it.
set -euo pipefail

PREFIX=/opt/tend/criu
FORCE=0
SELFTEST=0
for arg in "$@"; do
	case "$arg" in
	--force) FORCE=1 ;;
	--selftest) SELFTEST=1 ;;
	-h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "criu.sh: unknown option $arg" >&2; exit 2 ;;
	*) PREFIX=$arg ;;
	esac
done
case "$PREFIX" in /*) ;; *) PREFIX="$PWD/$PREFIX" ;; esac
PREFIX=${PREFIX%/}

# Debian suite the private criu comes from, and the packages unpacked into PREFIX/root: criu,
# its libraries and their libraries, down to libc6 (which provides the loader). libmnl0,
# libnftnl11, libxtables12 and libjansson4 are there because trixie's libnftables1 needs
# libnftnl >= 1.2.9 and bookworm only has 1.2.4: without them the loader would quietly pick the
# older bookworm copies from /etc/ld.so.cache. verify_closure() checks nothing resolves outside.
SUITE=${TEND_CRIU_SUITE:-trixie}
PKGS=(criu libcompel1 libc6 libbsd0 libmd0 libgnutls30t64 libnet1 libnftables1 libnl-3-200
	libprotobuf-c1 libuuid1 libunistring5 libnettle8t64 libhogweed6t64 libidn2-0 libp11-kit0
	libtasn1-6 libgmp10 libffi8 libmnl0 libnftnl11 libxtables12 libjansson4)
MULTIARCH=x86_64-linux-gnu
LOADER=ld-linux-x86-64.so.2

log() { echo "criu.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# Temporary files of this run; removed on exit whatever happens.
TMP=$(mktemp -d /tmp/tend-criu.XXXXXX)
cleanup() {
	[ -n "${SELFTEST_CLEANUP:-}" ] && $SELFTEST_CLEANUP
	rm -rf "$TMP"
}
trap cleanup EXIT

# probe_criu BIN: does BIN really checkpoint and restore a process here?
#
# `criu check` is not enough (the issue saw bookworm's 3.17 pass it and then fail every dump;
# on this host it fails both), so we dump a tiny sleeping process in its own session (setsid:
# no --shell-job needed, stdio is /dev/null so no external pipes), restore it detached, and
# check it is alive again with the same PID. BIN is run with the caller's environment, exactly
# as runc would run it. The target only sleeps a few seconds: if criu got stuck waiting for it
# (it does when hardware breakpoints are broken, see the wrapper), the target ends, criu fails,
# and the timeouts bound the rest.
#
# It runs in a subshell with stderr to /dev/null (messages go to fd 3): bash would otherwise
# print "Killed setsid ..." job notices, and the subshell's trap kills the target on any exit.
probe_criu() {
	(probe_criu_body "$1") 3>&2 2>/dev/null
}
probe_criu_body() {
	# Not local: the EXIT trap runs after this function has returned (we are in a subshell).
	bin=$1 img="$TMP/probe.$BASHPID" pid=
	local sleeper
	trap 'kill -9 "$pid" 2>/dev/null; rm -rf "$img"' EXIT
	mkdir -p "$img"
	if command -v busybox >/dev/null; then sleeper=(busybox sleep 8); else sleeper=(sleep 8); fi
	# Only /dev/null as fds: fd 3 is our log and fd 9 holds the provisioning flock, which criu
	# would refuse to dump ("file locks are held"; that needs --file-locks).
	setsid "${sleeper[@]}" </dev/null >/dev/null 3>&- 9>&- &
	pid=$!
	sleep 0.2
	# setsid must not have forked (it does when already a group leader): $! is the sleeper itself.
	if [ "$(awk '{print $6}' "/proc/$pid/stat")" != "$pid" ]; then
		log "probe: could not start a test process in its own session" 2>&3
		return 1
	fi
	if ! timeout 20 "$bin" dump -t "$pid" -D "$img" -o dump.log >/dev/null; then
		log "probe: '$bin dump' failed: $(grep 'Error' "$img/dump.log" | tail -n1 || echo '?')" 2>&3
		return 1
	fi
	# criu killed the dumped process; reap it so that its PID is free again for the restore.
	wait "$pid" || true
	if ! timeout 20 "$bin" restore -d -D "$img" -o restore.log >/dev/null; then
		log "probe: '$bin restore' failed: $(grep 'Error' "$img/restore.log" | tail -n1 || echo '?')" 2>&3
		return 1
	fi
	# The restored copy is not our child but has the same PID; the EXIT trap kills it.
	if ! kill -0 "$pid"; then
		log "probe: restored process $pid is not running" 2>&3
		return 1
	fi
}

# criu_works BIN: version, `criu check` and a real dump/restore. Prints why it does not.
criu_works() {
	local bin=$1 ver
	[ -x "$bin" ] || return 1
	ver=$("$bin" --version 2>/dev/null | sed -n 's/^Version: *//p') || true
	[ -n "$ver" ] || { log "$bin: cannot get its version"; return 1; }
	if ! "$bin" check >/dev/null 2>&1; then
		log "$bin ($ver): 'criu check' fails"
		return 1
	fi
	if ! probe_criu "$bin"; then
		log "$bin ($ver): passes 'criu check' but cannot dump/restore a process"
		return 1
	fi
	log "$bin ($ver): checkpoint/restore works"
}

# Write PREFIX/bin/criu. It locates PREFIX/root relative to itself (so the tree can be staged
# and then renamed), and runs criu through the unpacked loader: passing the library path as a
# loader argument rather than LD_LIBRARY_PATH keeps it out of the environment of what criu
# execs (iptables-restore, ip, action scripts), which must keep using the system libraries.
#
# CRIU_FAULT=130 is criu's documented "no breakpoints" switch (FI_NO_BREAKPOINTS): to take the
# parasite back out of a task, criu otherwise puts a hardware breakpoint on the sigreturn and
# waits for it. In this kind of VM (Firecracker) the breakpoint is accepted but never fires, so
# every dump hangs until the task exits. Without breakpoints criu traces syscalls up to
# rt_sigreturn instead (upstream criu forced this for a while for Xen guests); it costs
# microseconds. A CRIU_FAULT set by the caller is kept.
write_wrapper() {
	local dir=$1
	mkdir -p "$dir/bin"
	cat >"$dir/bin/criu" <<EOF
#!/bin/sh
# criu 4.x from Debian $SUITE, unpacked by tend's scripts/criu.sh into ../root and run through
# its own glibc loader (no libc upgrade on the host). runc runs it as \`criu swrk <fd>\`.
root="\${0%/*}/../root"
export CRIU_FAULT="\${CRIU_FAULT:-130}"
exec "\$root/usr/lib/$MULTIARCH/$LOADER" \\
	--library-path "\$root/usr/lib/$MULTIARCH" \\
	"\$root/usr/sbin/criu" "\$@"
EOF
	chmod 0755 "$dir/bin/criu"
}

# Every library criu needs must come from the unpacked tree, none from the host.
verify_closure() {
	local root=$1 out outside
	out=$("$root/usr/lib/$MULTIARCH/$LOADER" --list --library-path "$root/usr/lib/$MULTIARCH" \
		"$root/usr/sbin/criu") || die "the unpacked loader cannot load criu"
	outside=$(echo "$out" | awk '$2 == "=>" && $3 != "" {print $3}' | grep -v "^$root/" || true)
	[ -z "$outside" ] || die "libraries resolved outside $root (add their packages to PKGS): $outside"
	if echo "$out" | grep -q 'not found'; then die "missing libraries: $(echo "$out" | grep 'not found')"; fi
}

# The Debian mirror this machine already uses (apt sources, deb822 or one-line format).
debian_mirror() {
	local uri
	# The main archive only: an URI ending in /debian (not debian-security, not third parties).
	uri=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
		awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\/.*\/debian\/?$/) { print $i; exit } }') || true
	if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
		uri=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\/.*\/debian\/?$/) { print $i; exit } }' \
			/etc/apt/sources.list) || true
	fi
	echo "${uri:-http://deb.debian.org/debian}"
}

# Download the packages of $SUITE with a throw-away apt configuration: our own sources list,
# no sources.list.d, and lists/cache in $TMP. The host's apt state and sources stay untouched;
# the rest of the apt configuration (proxy, ...) is still honoured.
fetch_debs() {
	local dest=$1 mirror keyring=/usr/share/keyrings/debian-archive-keyring.gpg
	mirror=$(debian_mirror)
	[ -f "$keyring" ] || die "$keyring missing (package debian-archive-keyring)"
	mkdir -p "$TMP/apt/lists/partial" "$TMP/apt/cache/archives/partial" "$TMP/apt/parts" "$dest"
	echo "deb [signed-by=$keyring] $mirror $SUITE main" >"$TMP/apt/sources.list"
	local apt_opts=(
		-o "Dir::Etc::SourceList=$TMP/apt/sources.list"
		-o "Dir::Etc::SourceParts=$TMP/apt/parts"
		-o "Dir::State::Lists=$TMP/apt/lists"
		-o "Dir::Cache=$TMP/apt/cache"
		-o "APT::Sandbox::User=root" # _apt cannot write into our private 0700 temp dir
		-o "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false"
		-o "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false"
		-o "Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false"
		-o "Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false"
	)
	log "fetching $SUITE package lists from $mirror"
	apt-get -q "${apt_opts[@]}" update >&2 || die "apt-get update for $SUITE failed"
	log "downloading: ${PKGS[*]}"
	(cd "$dest" && apt-get -q "${apt_opts[@]}" download "${PKGS[@]}") >&2 ||
		die "apt-get download from $SUITE failed"
}

# Host tools criu runs during a dump/restore of a container.
ensure_host_tools() {
	local missing=()
	command -v iptables-restore >/dev/null || missing+=(iptables)
	command -v ip >/dev/null || missing+=(iproute2)
	[ ${#missing[@]} = 0 ] && return 0
	log "installing ${missing[*]} from the host's own (bookworm) sources"
	DEBIAN_FRONTEND=noninteractive apt-get -q install -y --no-install-recommends "${missing[@]}" >&2 ||
		{ apt-get -q update >&2 && DEBIAN_FRONTEND=noninteractive apt-get -q install -y --no-install-recommends "${missing[@]}" >&2; }
}

provision() {
	[ "$(id -u)" = 0 ] || die "must run as root to provision $PREFIX"
	command -v apt-get >/dev/null && command -v dpkg >/dev/null || die "needs apt-get and dpkg (Debian)"
	ensure_host_tools

	local t0 stage="$PREFIX.new.$$"
	t0=$(now_ms)
	# One provisioning at a time per PREFIX (the lock is released when this script exits).
	mkdir -p "$(dirname "$PREFIX")"
	exec 9>"$PREFIX.lock"
	flock 9
	rm -rf "$PREFIX".new.* # stages left by earlier failed runs
	fetch_debs "$TMP/debs"
	log "unpacking into $stage/root"
	mkdir -p "$stage/root"
	for deb in "$TMP"/debs/*.deb; do dpkg -x "$deb" "$stage/root"; done
	[ -x "$stage/root/usr/lib/$MULTIARCH/$LOADER" ] || die "no $LOADER in the unpacked libc6"
	[ -x "$stage/root/usr/sbin/criu" ] || die "no usr/sbin/criu in the unpacked criu"
	write_wrapper "$stage"
	verify_closure "$stage/root"
	# Verify the staged tree before it replaces anything; then swap it in.
	criu_works "$stage/bin/criu" || die "the private criu in $stage does not work (left for inspection until the next run)"
	rm -rf "$PREFIX"
	mv "$stage" "$PREFIX"
	log "provisioned criu $("$PREFIX/bin/criu" --version | sed -n 's/^Version: *//p') in $PREFIX in $(($(now_ms) - t0)) ms"
}

# --selftest: checkpoint and restore a real runc container with the criu we settled on.
# runc runs `criu swrk` found on PATH, so this also checks the wrapper in that role.
selftest() {
	local criudir=$1 dir="$TMP/selftest" id="tend-criu-selftest-$$" before after t0 ms_ckpt ms_rest
	command -v runc >/dev/null || die "selftest needs runc"
	local bb
	bb=$(command -v busybox) || die "selftest needs busybox (busybox-static)"
	local runc=(runc --root "$dir/runc-root")
	mkdir -p "$dir/bundle/rootfs/bin" "$dir/bundle/rootfs/tmp" "$dir/bundle/rootfs/proc" \
		"$dir/bundle/rootfs/dev" "$dir/bundle/rootfs/sys"
	cp "$bb" "$dir/bundle/rootfs/bin/busybox"
	for applet in sh sleep echo cat; do ln -s busybox "$dir/bundle/rootfs/bin/$applet"; done
	(cd "$dir/bundle" && runc spec)
	# A counter that writes its value to /tmp/c in the (writable) rootfs every 0.2 s.
	sed -i -e 's/"terminal": true/"terminal": false/' -e 's/"readonly": true/"readonly": false/' \
		-e 's|^\([[:space:]]*\)"sh"$|\1"sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /tmp/c; sleep 0.2; done"|' \
		"$dir/bundle/config.json"
	grep -q 'while true' "$dir/bundle/config.json" || die "selftest: could not set the process args in config.json"
	SELFTEST_CLEANUP="selftest_cleanup $id $dir"

	# stdio is /dev/null: criu cannot restore pipes to a process that no longer exists.
	(cd "$dir/bundle" && "${runc[@]}" run -d "$id" </dev/null >/dev/null 2>&1) || die "selftest: runc run failed"
	# Let the counter reach 5 first, so that "continued" and "restarted from 0" look different.
	for _ in $(seq 50); do
		[ "$(cat "$dir/bundle/rootfs/tmp/c" 2>/dev/null || echo 0)" -ge 5 ] && break
		sleep 0.1
	done
	[ "$(cat "$dir/bundle/rootfs/tmp/c" 2>/dev/null || echo 0)" -ge 5 ] || die "selftest: the counter does not count"
	t0=$(now_ms)
	PATH="$criudir:$PATH" "${runc[@]}" checkpoint --image-path "$dir/img" --work-path "$dir/work" "$id" >&2 ||
		{ tail -5 "$dir/work/dump.log" >&2; die "selftest: runc checkpoint failed"; }
	ms_ckpt=$(($(now_ms) - t0))
	before=$(cat "$dir/bundle/rootfs/tmp/c")
	sleep 0.5
	[ "$(cat "$dir/bundle/rootfs/tmp/c")" = "$before" ] || die "selftest: counter still moving after checkpoint"
	t0=$(now_ms)
	(cd "$dir/bundle" && PATH="$criudir:$PATH" "${runc[@]}" restore -d --image-path "$dir/img" \
		--work-path "$dir/work" "$id" </dev/null >/dev/null 2>&1) ||
		{ tail -5 "$dir/work/restore.log" >&2; die "selftest: runc restore failed"; }
	ms_rest=$(($(now_ms) - t0))
	sleep 0.5
	after=$(cat "$dir/bundle/rootfs/tmp/c")
	log "selftest: counter $before at checkpoint (${ms_ckpt} ms), $after 0.5 s after restore (${ms_rest} ms)"
	# Restarted from 0 it would be at 1..3 now; continuing, it is above the checkpointed value (>= 5).
	[ "$after" -gt "$before" ] || die "selftest: the restored container did not continue ($before -> $after)"
	log "selftest: OK, the restored container continued where it stopped"
}
selftest_cleanup() {
	local id=$1 dir=$2
	runc --root "$dir/runc-root" delete -f "$id" >/dev/null 2>&1 || true
}

# 1. A criu already on PATH that really works is used as is (unless --force).
CRIU_DIR=
if [ "$FORCE" = 0 ] && sys=$(command -v criu) && [ "$sys" != "$PREFIX/bin/criu" ]; then
	if criu_works "$sys"; then CRIU_DIR=$(dirname "$sys"); fi
fi
# 2. Our private criu from an earlier run, if it still works.
if [ -z "$CRIU_DIR" ] && [ "$FORCE" = 0 ] && [ -x "$PREFIX/bin/criu" ]; then
	if criu_works "$PREFIX/bin/criu"; then CRIU_DIR=$PREFIX/bin; fi
fi
# 3. Otherwise (or with --force) provision it.
if [ -z "$CRIU_DIR" ]; then
	provision
	CRIU_DIR=$PREFIX/bin
fi

if [ "$SELFTEST" = 1 ]; then selftest "$CRIU_DIR"; fi
echo "$CRIU_DIR"
