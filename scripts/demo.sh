#!/usr/bin/env bash
# demo.sh drives a real `engine daemon` through the CLI and narrates what
# happens: a healthy service, a crasher restarted with backoff, an
# unhealthy service restarted by its health check, and the daemon killed
# with SIGKILL and started again while the containers keep running, and a
# web server published on 127.0.0.1 answering the host.
# Everything lives under a private /tmp dir with its own containerd; the
# script cleans up after itself and exits 0 only if every step did what it
# said. Run as root: bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
# shellcheck source=/dev/null
source build/env.sh
CGO_ENABLED=0 go build -o build/engine ./cmd/engine # static, as setup.sh builds it
go build -o build/engined ./cmd/engined # `engine daemon` runs it
gcc -static -Os -o build/tend-init cmd/tend-init/tend-init.c

work=$(mktemp -d /tmp/tend-demo-XXXXXX)
root=$work/root
sock=$work/engine.sock
ns=tend-demo-$$
img=docker.io/library/busybox:latest
events=$work/events.log
daemon_pid=""
events_pid=""
# The default bridge is removed at the end if the demo made it.
bridge_existed=""
ip link show tend0 >/dev/null 2>&1 && bridge_existed=1

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
info() { printf '    %s\n' "$*"; }
fail() {
	printf '\n\033[31mdemo: FAILED: %s\033[0m\n' "$*" >&2
	[ -f "$work/daemon.log" ] && { echo "--- last daemon log lines:" >&2; tail -n 30 "$work/daemon.log" >&2; }
	exit 1
}
E() { build/engine -H "$sock" "$@"; }

# poll SECONDS WHAT CMD...: run CMD every 200ms until it succeeds.
poll() {
	local secs=$1 what=$2
	shift 2
	local deadline=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || fail "timed out after ${secs}s waiting for $what"
		sleep 0.2 # poll interval
	done
}

# field REF KEY: a number or string field of the container's record.
field() {
	E inspect --raw "$1" | tr -d ' \n' | grep -o "\"$2\":[^,}]*" | head -n1 | cut -d: -f2 | tr -d '"'
}

start_daemon() {
	build/engine daemon --root "$root" --socket "$sock" --namespace "$ns" >>"$work/daemon.log" 2>&1 &
	daemon_pid=$!
	poll 60 "the engine to serve on $sock" E version
	info "engine daemon pid $daemon_pid serving on $sock (log: $work/daemon.log)"
}

start_events() {
	E events >>"$events" 2>&1 &
	events_pid=$!
}

cleanup() {
	local status=$?
	set +e
	say "Cleaning up"
	if [ -n "$events_pid" ]; then kill "$events_pid" 2>/dev/null; wait "$events_pid" 2>/dev/null; fi
	if [ -n "${registry_pid:-}" ]; then kill "$registry_pid" 2>/dev/null; wait "$registry_pid" 2>/dev/null; info "registry stopped"; fi
	if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
		for id in $(E ps -aq --no-trunc 2>/dev/null); do E rm -f "$id" >/dev/null && info "removed container ${id:0:12}"; done
		kill -TERM "$daemon_pid"
		local deadline=$((SECONDS + 60))
		while kill -0 "$daemon_pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
		kill -0 "$daemon_pid" 2>/dev/null && kill -KILL "$daemon_pid"
		wait "$daemon_pid" 2>/dev/null
		info "engine daemon stopped"
	fi
	# Our containerd dies with the daemon; make sure of it (only ours:
	# matched by its private config path).
	for p in /proc/[0-9]*; do
		if { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -qF -- "$root/containerd/config.toml"; then
			kill -KILL "${p#/proc/}" 2>/dev/null && info "killed leftover containerd ${p#/proc/}"
		fi
	done
	# Unmount anything left under our dir, deepest first.
	awk -v w="$work" '$5 ~ "^"w {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
	rm -rf "$work" "/tmp/tend-fifo-$ns" 2>/dev/null
	[ -z "$bridge_existed" ] && ip link delete tend0 2>/dev/null
	rmdir "/run/containerd/runc/$ns" 2>/dev/null
	if [ "$status" -eq 0 ]; then
		printf '\n\033[32mdemo: every step did what it said\033[0m\n'
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "Starting engine daemon (its own containerd under $root/containerd)"
start_daemon
start_events
E version | sed 's/^/    /'

say "Importing the busybox test image"
E image import build/busybox.tar | sed 's/^/    /'
E image ls | sed 's/^/    /'

say "A local registry (docker-registry on 127.0.0.1): push, remove, pull it back; remove, and run pulls it"
command -v docker-registry >/dev/null || fail "no docker-registry: run scripts/setup.sh"
reg_port=$((20000 + RANDOM % 20000))
mkdir -p "$work/registry"
printf 'version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
	"$work/registry/storage" "$reg_port" >"$work/registry/config.yml"
docker-registry serve "$work/registry/config.yml" >>"$work/registry.log" 2>&1 &
registry_pid=$!
poll 20 "the registry to serve on 127.0.0.1:$reg_port" bash -c "exec 3<>/dev/tcp/127.0.0.1/$reg_port"
reg_img="127.0.0.1:$reg_port/demo/busybox:v1"
E tag "$img" "$reg_img"
E push "$reg_img" | sed 's/^/    /'
E image rm "$reg_img" >/dev/null
E pull "$reg_img" | sed 's/^/    /'
E image rm "$reg_img" >/dev/null
E run --rm "$reg_img" echo "hello from an image pulled from the registry" 2>&1 | sed 's/^/    /'
E image inspect "$reg_img" | grep -q '"architecture"' || fail "the pulled image is not there"
E image rm "$reg_img" >/dev/null

say "1. A healthy service: its health check passes after a 2s warm-up"
E run -d --name web --health-cmd 'test -e /tmp/ready' --health-interval 1s --health-start-interval 500ms \
	--health-start-period 30s "$img" sh -c 'sleep 2; touch /tmp/ready; exec sleep 100000' >/dev/null
E ps --filter name=web | sed 's/^/    /'
poll 30 "web to become healthy" sh -c "build/engine -H '$sock' ps --filter name=web | grep -q '(healthy)'"
E ps --filter name=web | sed 's/^/    /'
info "web is healthy"

say "2. A crasher with --restart on-failure:3: restarted 3 times with growing backoff, then left exited"
E run -d --name crasher --restart on-failure:3 "$img" sh -c 'echo crashing; exit 1' >/dev/null
poll 180 "crasher to use up its 3 restarts" sh -c "build/engine -H '$sock' ps -a --filter name=crasher --format '{{.Restarts}} {{.Status}}' | grep -q '^3 Exited (1)'"
E ps -a --filter name=crasher | sed 's/^/    /'
[ "$(E logs crasher | grep -c crashing)" -eq 4 ] || fail "crasher should have run 4 times (1 + 3 restarts): $(E logs crasher | grep -c crashing) runs logged"
info "crasher ran 4 times (1 + 3 restarts) and stays exited with status 1"
# Backoff: each restart event carries next_restart_at; the planned delay
# is the time from the event to it. The observed die -> start gaps add the
# time a task takes to start.
cid=$(field crasher id)
delays=()
while read -r ts attrs; do
	next=$(grep -o 'next_restart_at=[^,)]*' <<<"$attrs" | cut -d= -f2)
	[ -n "$next" ] || continue
	delays+=("$(awk -v a="$(date -d "$ts" +%s.%N)" -v b="$(date -d "$next" +%s.%N)" 'BEGIN{printf "%.0f", (b-a)*1000}')")
done < <(grep -E "container restart $cid " "$events" | awk '{ts=$1; $1=$2=$3=$4=""; print ts, $0}')
[ "${#delays[@]}" -eq 3 ] || fail "expected 3 restart events with next_restart_at for crasher, found ${#delays[@]}"
info "restart events: backoff before each restart (ms): ${delays[*]}"
((delays[1] > delays[0] && delays[2] > delays[1])) || fail "backoff delays do not grow: ${delays[*]}"
gaps=()
prev_die=""
while read -r ts kind; do
	t=$(date -d "$ts" +%s.%N)
	if [ "$kind" = die ]; then
		prev_die=$t
	elif [ -n "$prev_die" ]; then
		gaps+=("$(awk -v a="$prev_die" -v b="$t" 'BEGIN{printf "%.0f", (b-a)*1000}')")
		prev_die=""
	fi
done < <(grep -E "container (die|start) $cid " "$events" | awk '{print $1, $3}')
info "observed gaps from exit to the next start (ms, including task start): ${gaps[*]}"
info "each planned delay doubles the one before: exponential backoff"

say "3. An unhealthy service restarted by --on-unhealthy=restart"
E run -d --name flaky --health-cmd 'test -e /tmp/ok' --health-interval 500ms --health-retries 2 --on-unhealthy restart \
	"$img" sh -c 'touch /tmp/ok; sleep 3; rm /tmp/ok; exec sleep 100000' >/dev/null
info "flaky passes its check for 3s after each start, then fails it"
poll 60 "flaky to be restarted for being unhealthy" sh -c "grep -E 'container restart .*name=flaky' '$events' | grep -q 'reason=unhealthy'"
grep -E 'container (health_status|restart) .*name=flaky' "$events" | sed 's/^/    /'
poll 30 "flaky to run again" sh -c "build/engine -H '$sock' ps --filter name=flaky | grep -q 'Up '"
E ps --filter name=flaky | sed 's/^/    /'
info "flaky was restarted with reason=unhealthy (restart count $(field flaky restart_count))"

say "4. Live-restore: the daemon is killed with SIGKILL and started again; containers keep running"
E run -d --name sleeper "$img" sleep 100000 >/dev/null
declare -A pids
for c in web sleeper; do
	pids[$c]=$(field "$c" pid)
	info "$c runs as pid ${pids[$c]}"
done
kill -KILL "$daemon_pid"
wait "$daemon_pid" 2>/dev/null || true
kill "$events_pid" 2>/dev/null || true
wait "$events_pid" 2>/dev/null || true
info "daemon pid $daemon_pid killed"
for c in web sleeper; do
	kill -0 "${pids[$c]}" 2>/dev/null || fail "$c (pid ${pids[$c]}) died with the daemon"
done
info "web and sleeper are still running without a daemon"
start_daemon
start_events
for c in web sleeper; do
	[ "$(field "$c" state)" = running ] || fail "$c is not running after the daemon restart"
	[ "$(field "$c" pid)" = "${pids[$c]}" ] || fail "$c changed pid across the daemon restart: ${pids[$c]} -> $(field "$c" pid)"
done
E ps | sed 's/^/    /'
info "same pids after the restart: ${pids[*]}"
E stop -t 1 sleeper >/dev/null
poll 20 "the stop of sleeper in the event stream" grep -qE "container die .*name=sleeper" "$events"

say "5. Networking: busybox httpd published on 127.0.0.1 (-p 127.0.0.1:PORT:80) answering the host, and two containers that reach each other by name"
# The first port from 18080 that nothing on the host answers on.
site_port=18080
while (exec 3<>"/dev/tcp/127.0.0.1/$site_port") 2>/dev/null; do site_port=$((site_port + 1)); done
E run -d --name site -p "127.0.0.1:$site_port:80" "$img" sh -c 'mkdir -p /www; echo "hello from site" >/www/index.html; exec httpd -f -p 80 -h /www' >/dev/null
hostport=$(E port site 80/tcp)
[ "$hostport" = "127.0.0.1:$site_port" ] || fail "engine port site 80/tcp: $hostport, want 127.0.0.1:$site_port"
E ps --filter name=site | sed 's/^/    /'
info "engine port site 80/tcp: $hostport"
poll 30 "site to answer on $hostport" sh -c "busybox wget -q -O - 'http://$hostport/' | grep -q 'hello from site'"
info "GET http://$hostport/ from the host: $(busybox wget -q -O - "http://$hostport/")"
E network create demonet >/dev/null
E run -d --name backend --network demonet "$img" sleep 100000 >/dev/null
out=$(E run --rm --network demonet "$img" ping -c 1 -W 5 backend) || fail "ping backend by name: $out"
info "$(echo "$out" | head -n 2 | tail -n 1)"
E rm -f backend >/dev/null
E network rm demonet >/dev/null

say "Events streamed during the demo (engine events, $events)"
sed 's/^/    /' "$events"
