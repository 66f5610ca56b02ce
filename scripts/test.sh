#!/usr/bin/env bash
# test.sh is what CI runs, as root: setup.sh, then gofmt, go vet, the unit
# tests with the race detector, and the integration tests against private
# containerd daemons, in parallel processes. Each integration run's output
# is saved to build/integration-NAME.log. It ends with one line "N passed, N failed, N skipped"
# over all packages and exits non-zero if anything failed.
set -euo pipefail

# All in a function: bash reads a script as it runs, so editing this file
# (or a git pull) during a run must not change what runs.
main() {
	cd "$(dirname "$0")/.."

	bash scripts/setup.sh
	# shellcheck source=/dev/null
	source build/env.sh

	say() { echo "test: $*" >&2; }
	status=0
	counts=build/test-counts
	rm -f "$counts" "$counts".*

	say "gofmt"
	# The files go build sees: not build/, nor dirs go ignores (_*, .*, testdata).
	unformatted=$(find . \( -path ./build -o -name testdata -o -name '_*' -o -name '.?*' \) -prune -o -name '*.go' -print0 |
		xargs -0 -r gofmt -l)
	if [ -n "$unformatted" ]; then
		say "FAIL: not gofmt-ed (run gofmt -w):"
		echo "$unformatted" >&2
		status=1
	fi

	say "go vet ./..."
	go vet ./... || status=1

	# Build the summariser once, so a broken tree cannot hide the counts.
	go build -o build/testsummary ./tools/testsummary
	summary() { build/testsummary "$@"; }

	mapfile -t unit < <(go list -e ./... | grep -v '/integration\(/\|$\)')
	say "unit tests: go test -race -count=1 (${#unit[@]} packages)"
	go test -race -count=1 -json "${unit[@]}" 2>&1 | summary -quiet -counts "$counts" -log build/unit.log || status=1

	# The integration runs, three at a time, each in its own process with
	# its own containerd: the library and backend tests (core), the engine
	# CLI tests, the docker CLI and API tests (with the network leak test,
	# to even out the three), then the compatibility runs against containerd
	# 1.7 and 2.x as places free up. They mostly wait on daemons, not on the
	# CPU. Each run adds to a counts file of its own, summed at the end.
	declare -A jobs=() # pid -> name
	reap() { # waits for one run; prints its result, and the end of its output if it failed
		local pid="" st=0 name
		wait -n -p pid "${!jobs[@]}" || st=$?
		name=${jobs[$pid]}
		unset "jobs[$pid]"
		if [ "$st" -eq 0 ]; then
			say "integration tests ($name): $(tail -n 1 "build/integration-$name.out")"
		else
			status=1
			say "integration tests ($name) FAILED; the end of its output (all of it: build/integration-$name.log):"
			tail -n 300 "build/integration-$name.out"
		fi
	}
	job() { # name, then the go test arguments
		local name=$1
		shift
		while [ "${#jobs[@]}" -ge 3 ]; do reap; done
		say "integration tests ($name): go test -count=1 $* (log: build/integration-$name.log)"
		go test -count=1 -json "$@" 2>&1 | summary -counts "$counts.$name" -log "build/integration-$name.log" >"build/integration-$name.out" &
		jobs[$!]=$name
	}
	leak='^TestBackendNetworkNoLeaks$'
	job core -timeout 25m -skip "^Test(Engine|Docker)|$leak" ./integration/
	job engine -timeout 25m -run '^TestEngine' ./integration/
	job docker -timeout 25m -run "^TestDocker|$leak" ./integration/

	# The libcontainerd tests and the backend's fault tests (containerd or
	# the engine killed) again against each newer containerd: 1.7 and 2.x
	# clean up dead tasks when they start, which 1.6 does not.
	compat='^Test(Smoke|Lifecycle|RunningContainer|StdinAndTerminal|BadInput|Exit|OOM|ManyExits|Restore|Checkpoint|StaleTaskBundle)'
	compat+='|^TestBackend(LiveRestoreAfterEngineKill|RestoreNeverStartedTask|ExitsWhileEngineDownRecordedAtBoot|ExitCodesFromInitAfterContainerdRestart|ContainerdRestartDuringRestartStorm|EngineAndContainerdKilledDuringRestartStorm|UnlessStoppedAndAlwaysAcrossEngineRestart|HealthSurvivesEngineRestart|StaleTaskBundle|CorruptAndTornRecords)$'
	compat+='|^TestHealth(StatusSurvivesEngineRestart|ExecProbeEscapesWithoutInitAfterEngineRestart)$|^TestEngine(ExitsWhileDaemonDownShownAtOnce|NetworkLiveRestore)$'
	for alt in $TEND_CONTAINERD_ALT; do
		version=${alt%%=*} dir=${alt#*=}
		TEND_CONTAINERD_PATH=$dir job "containerd-$version" -timeout 12m -run "$compat" ./integration/
	done
	while [ "${#jobs[@]}" -gt 0 ]; do reap; done
	cat "$counts" "$counts".* 2>/dev/null | awk '{p += $1; f += $2; s += $3} END {if (NR) print p, f, s}' >"$counts.all"
	mv "$counts.all" "$counts"
	rm -f "$counts".*

	[ -s "$counts" ] || { say "FAIL: no test results recorded"; echo "0 1 0" >"$counts"; status=1; }
	read -r passed failed skipped <"$counts"
	if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
		say "FAIL: gofmt or go vet (see above)"
	fi
	echo "$passed passed, $failed failed, $skipped skipped"
	exit "$status"
}

main "$@"
