#!/usr/bin/env bash
# The README's test command: installs what the tests need, then runs every test of the workspace and prints the
# totals on the last line.
set -euo pipefail
cd "$(dirname "$0")/.."
# moto_server stands in for AWS Secrets Manager and S3 in the tests.
if ! command -v moto_server >/dev/null 2>&1; then
  python3 -m pip install --quiet 'moto[server]==5.2.1'
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
