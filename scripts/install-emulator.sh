#!/usr/bin/env bash
# Installs the Lambda runtime emulator (`cargo lambda watch`) into the pinned venv: the pinned
# cargo-lambda wheel only (its Zig toolchain is for cross builds, not needed to run binaries).
# Prints the venv path. Used by scripts/test.sh and scripts/demo.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$("$root/localstack/venv.sh")"
"$venv/bin/python" -m pip install --quiet --only-binary :all: --no-deps \
  "$(grep -E '^cargo-lambda==' "$root/localstack/requirements-build.txt")" >&2
echo "$venv"
