#!/usr/bin/env bash
# The README's test command: installs what the tests need, then runs every test of the workspace and prints the
# totals on the last line.
set -euo pipefail
cd "$(dirname "$0")/.."
# moto_server stands in for AWS S3, Secrets Manager and EventBridge in the tests.
if ! command -v moto_server >/dev/null 2>&1; then
  python3 -m pip install --quiet 'moto[server]==5.2.1'
fi
# phonenumbers (libphonenumber's metadata) checks the generated number -> time-zone table and its corpus.
if ! python3 -c 'import phonenumbers, sys; sys.exit(phonenumbers.__version__ != "9.0.43")' 2>/dev/null; then
  python3 -m pip install --quiet 'phonenumbers==9.0.43'
fi
python3 scripts/gen_timezones.py --check
# The end-to-end test runs the state machine with aws-local-stepfunctions (npm) against the function binaries.
if [ ! -d tests/e2e/node_modules/aws-local-stepfunctions ]; then
  npm ci --prefix tests/e2e --no-audit --no-fund --loglevel=error
fi
# The browser test renders a run's report and an evidence index in headless Chromium (Debian's package).
if [ -z "${DNCFLOW_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null ||
    { $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null; }
fi
# Bins and tests in one build: the function binaries the e2e test runs are built with the same (dev-unified)
# features as the tests, so `cargo test` below compiles no dependency a second time.
cargo build --locked --workspace --bins --tests
# The deployable parts: state machine definition (asl-validator), SAM template (cfn-lint, before and after the
# SAM transform).
./scripts/check-infra.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
if cargo nextest --version >/dev/null 2>&1 && [ -z "${DNCFLOW_CARGO_TEST:-}" ]; then
  # cargo-nextest (on the build machines): each test in its own process and the test binaries side by side, where
  # `cargo test` runs the binaries one after another while the end-to-end tests mostly wait on processes. The
  # workspace has no doc tests (nextest does not run them): a doc comment with a code block would need `cargo test
  # --doc` here.
  cargo nextest run --locked --workspace --no-fail-fast "$@" 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  set -e
  # nextest's summary: "N tests run: P passed, F failed, S skipped" (the failed part only when some failed).
  awk '/tests run:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p = $i; if ($(i+1) ~ /^failed/) f = $i } }
       END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
  exit "$status"
fi
cargo test --locked --workspace "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
