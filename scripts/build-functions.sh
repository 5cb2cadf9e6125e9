#!/usr/bin/env bash
# Builds the four Lambda functions with cargo-lambda (installed from PyPI into the pinned venv,
# see localstack/requirements-build.txt)
# for the provided.al2023 runtime: target/lambda/<function>/bootstrap. Extra arguments go to
# `cargo lambda build` (e.g. --arm64).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

venv="$("$root/localstack/venv.sh")"
"$venv/bin/python" -m pip install --quiet --only-binary :all: --no-deps \
  -r "$root/localstack/requirements-build.txt"
export PATH="$venv/bin:$PATH"
# --compiler cargo: build with the host toolchain (x86_64 Linux here), no Zig needed.
cargo lambda build --release --locked --compiler cargo \
  -p ingest -p compact -p replay -p retention "$@"
for f in ingest compact replay retention; do
  ls -l "${CARGO_TARGET_DIR:-$root/target}/lambda/$f/bootstrap"
done
