#!/usr/bin/env bash
# Checks the deployable parts: the state machine definition with asl-validator, the SAM template with cfn-lint, and
# the SAM-transformed CloudFormation with cfn-lint again (it sees the generated functions, roles and schedule), and
# the generated roles against what the functions need (scripts/iam.py), and that nothing asynchronous can fail in
# silence (scripts/resilience.py: dead-letter queues, alarms, timeouts, logging, catches, retries). First the
# documentation: every link, anchor and cited path of README.md and docs/ resolves in the repository
# (scripts/check-docs.py). Then the dependency graph: the library and the CLI link no Lambda runtime
# (scripts/check-deps.py reads Cargo.lock).
set -euo pipefail
cd "$(dirname "$0")/.."

python3 scripts/check-docs.py --selftest
python3 scripts/check-docs.py
python3 scripts/check-deps.py --selftest
python3 scripts/check-deps.py

if ! python3 -c 'import cfnlint, samtranslator' 2>/dev/null; then
  python3 -m pip install --quiet 'cfn-lint>=1.51' 'aws-sam-translator>=1.110'
fi
if [ ! -d tests/e2e/node_modules/asl-validator ]; then
  npm ci --prefix tests/e2e --no-audit --no-fund --loglevel=error
fi

for definition in infra/*.asl.json; do
  echo "asl-validator: $definition"
  (cd tests/e2e && npx --no-install asl-validator --json-path "../../$definition")
done

export AWS_DEFAULT_REGION=us-east-1
echo "cfn-lint: template.yaml"
cfn-lint template.yaml
transformed=$(mktemp --suffix=.json)
trap 'rm -f "$transformed"' EXIT
python3 scripts/sam_transform.py template.yaml "$transformed"
echo "cfn-lint: template.yaml after the SAM transform"
cfn-lint "$transformed"
echo "iam: what moto cannot enforce (ListBucket for absent reads, who may invoke and start what)"
python3 scripts/iam.py check template.yaml
echo "resilience: dead-letter queues, alarms, timeouts, logging, catches and retries of what runs asynchronously"
python3 scripts/resilience.py check template.yaml
python3 scripts/resilience.py selftest template.yaml
echo "release profile: the settings cargo-lambda would otherwise choose for the bootstraps (Cargo.toml)"
python3 - <<'PY'
import sys, tomllib
with open("Cargo.toml", "rb") as f:
    release = tomllib.load(f).get("profile", {}).get("release", {})
# cargo-lambda adds lto="thin", codegen-units=1, panic="abort" and strip="symbols" for any of these the profile does not
# set: each must be set here, and panics must unwind (a panicking handler answers an error instead of killing the
# execution environment).
missing = [k for k in ("lto", "codegen-units", "panic", "strip") if k not in release]
problems = [f"[profile.release] does not set {k} (cargo-lambda would choose it)" for k in missing]
if release.get("panic", "unwind") != "unwind":
    problems.append(f'[profile.release] panic = "{release["panic"]}": a panicking handler must unwind')
for p in problems:
    print(f"  {p}", file=sys.stderr)
sys.exit(1 if problems else 0)
PY
echo "infra: ok"
