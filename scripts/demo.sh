#!/usr/bin/env bash
# The README's demo command: starts a local AWS endpoint (LocalStack in Docker where an engine
# runs, moto server from a pinned venv otherwise), deploys infra/template.yaml into it, sends a
# few thousand generated decisions through SQS, ingests them as the event source mapping would,
# and prints where they landed and one decision looked up with its proof. The endpoint keeps
# running afterwards; stop it with localstack/stop.sh. Extra arguments go to the demo
# (e.g. --records 5000).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

"$root/localstack/start.sh"
set -a
# shellcheck disable=SC1091
source "$root/.dj/endpoint.env"
set +a
export DJ_PYTHON="${DJ_PYTHON:-${DJ_VENV:-$root/.venv}/bin/python}"

cargo run --locked --quiet -p integration-tests --bin demo -- "$@"
