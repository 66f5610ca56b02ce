#!/usr/bin/env bash
# test.sh is what CI runs, as root: setup.sh, then gofmt, go vet, the unit
# tests with the race detector, and the integration tests against private
# containerd daemons. Output of the integration tests is saved to
# build/integration.log. It ends with one line "N passed, N failed, N skipped"
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
	rm -f "$counts"

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

	say "integration tests: go test -count=1 -timeout 25m -v ./integration/... (log: build/integration.log)"
	go test -count=1 -timeout 25m -json ./integration/... 2>&1 | summary -counts "$counts" -log build/integration.log || status=1

	# The libcontainerd tests and the backend's fault tests (containerd or
	# the engine killed) again against each newer containerd: 1.7 and 2.x
	# clean up dead tasks when they start, which 1.6 does not.
	compat='^Test(Smoke|Lifecycle|RunningContainer|StdinAndTerminal|BadInput|Exit|OOM|ManyExits|Restore|Checkpoint|StaleTaskBundle)'
	compat+='|^TestBackend(LiveRestoreAfterEngineKill|RestoreNeverStartedTask|ExitsWhileEngineDownRecordedAtBoot|ExitCodesFromInitAfterContainerdRestart|ContainerdRestartDuringRestartStorm|EngineAndContainerdKilledDuringRestartStorm|UnlessStoppedAndAlwaysAcrossEngineRestart|HealthSurvivesEngineRestart)$'
	for alt in $TEND_CONTAINERD_ALT; do
		version=${alt%%=*} dir=${alt#*=}
		say "libcontainerd tests against containerd $version ($dir; log: build/integration-$version.log)"
		TEND_CONTAINERD_PATH=$dir go test -count=1 -timeout 12m -json -run "$compat" ./integration/ 2>&1 |
			summary -counts "$counts" -log "build/integration-$version.log" || status=1
	done

	[ -s "$counts" ] || { say "FAIL: no test results recorded"; echo "0 1 0" >"$counts"; status=1; }
	read -r passed failed skipped <"$counts"
	if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
		say "FAIL: gofmt or go vet (see above)"
	fi
	echo "$passed passed, $failed failed, $skipped skipped"
	exit "$status"
}

main "$@"
