#!/usr/bin/env bash
# The artifacts AWS runs: every function's `bootstrap` for arm64 (Graviton, `Architectures: [arm64]` in
# template.yaml), built the way `sam build` builds them (`BuildMethod: rust-cargolambda` shells out to cargo-lambda),
# then checked: each is an aarch64 Linux ELF executable, and its size is printed.
#
# Installs what it needs: cargo-lambda from PyPI (it brings zig, the cross-linker: no Docker, no system toolchain)
# and the Rust standard library for aarch64-unknown-linux-gnu.
#
# Usage: scripts/build-lambdas.sh [--out DIR]   (default DIR: target/lambda-arm64; bootstraps at DIR/lambda/<fn>/)
set -euo pipefail
cd "$(dirname "$0")/.."

out=target/lambda-arm64
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    *) echo "usage: $0 [--out DIR]" >&2; exit 2 ;;
  esac
done

# The functions are the workspace members under functions/ (one binary each, named as the directory).
functions=()
for manifest in functions/*/Cargo.toml; do
  functions+=("$(basename "$(dirname "$manifest")")")
done

if ! command -v cargo-lambda >/dev/null 2>&1; then
  python3 -m pip install --quiet 'cargo-lambda==1.9.2'
fi
if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
  rustup target add aarch64-unknown-linux-gnu
fi

packages=()
for f in "${functions[@]}"; do packages+=(--package "$f"); done
started=$(date +%s)
# One cargo invocation for every function: the dependencies are compiled once. A target directory of its own, so a
# concurrent debug build (the tests) neither waits for nor invalidates it.
CARGO_TARGET_DIR="$out" cargo lambda build --release --arm64 --locked "${packages[@]}"
elapsed=$(( $(date +%s) - started ))

status=0
printf '%-16s %12s %10s  %s\n' function bytes MiB check
for f in "${functions[@]}"; do
  bootstrap="$out/lambda/$f/bootstrap"
  if [ ! -f "$bootstrap" ]; then
    printf '%-16s %12s %10s  %s\n' "$f" - - "MISSING: $bootstrap"
    status=1
    continue
  fi
  # ELF header: magic, 64-bit class (2), little-endian (1), e_type EXEC (2) or DYN (3, a PIE), e_machine 183 (AArch64).
  verdict=$(python3 - "$bootstrap" <<'PY'
import struct, sys
with open(sys.argv[1], "rb") as f:
    h = f.read(20)
if len(h) < 20 or h[:4] != b"\x7fELF":
    print("not an ELF file"); sys.exit(0)
if h[4] != 2 or h[5] != 1:
    print("not a 64-bit little-endian ELF"); sys.exit(0)
e_type, e_machine = struct.unpack_from("<HH", h, 16)
if e_machine != 183:
    print(f"machine {e_machine}, not aarch64 (183)"); sys.exit(0)
if e_type not in (2, 3):
    print(f"ELF type {e_type}, not an executable"); sys.exit(0)
print("ok")
PY
)
  bytes=$(stat -c %s "$bootstrap")
  if [ ! -x "$bootstrap" ]; then verdict="not executable"; fi
  printf '%-16s %12d %10.1f  %s\n' "$f" "$bytes" "$(awk -v b="$bytes" 'BEGIN { print b / 1048576 }')" "$verdict"
  [ "$verdict" = ok ] || status=1
done
echo "arm64 bootstraps built in ${elapsed} s"
exit "$status"
