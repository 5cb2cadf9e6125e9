#!/usr/bin/env bash
# The README's demo command: starts a local AWS endpoint (LocalStack in Docker where an engine
# runs, moto server from a pinned venv otherwise) and the Lambda runtime emulator, and runs the
# demo (tests/src/bin/demo.rs): deploy, produce, ingest, compact, checkpoint, retention dry run,
# an auditor's replay, re-execution, what-if, verify and report. The endpoint keeps running
# afterwards; stop it with localstack/stop.sh. Extra arguments go to the demo
# (e.g. --records 5000).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

"$root/localstack/start.sh"
set -a
# shellcheck disable=SC1091
source "$root/.dj/endpoint.env"
set +a
# The runtime emulator (`cargo lambda watch`) that runs the function binaries.
venv="$("$root/scripts/install-emulator.sh")"
export DJ_VENV="$venv"
export DJ_PYTHON="${DJ_PYTHON:-$venv/bin/python}"

cargo run --locked --quiet -p integration-tests --bin demo -- "$@"
