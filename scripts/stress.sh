#!/usr/bin/env bash
# stress.sh runs the integration tests behind the "stress" build tag: fault
# tests that do not pass reliably yet (see each test's comment). Not part of
# scripts/test.sh or CI. Run as root after scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# shellcheck source=/dev/null
source build/env.sh
exec go test -tags stress -count=1 -timeout 10m -v -run 'Storm' ./integration/
