#!/usr/bin/env bash
# The README's test command: starts a local AWS endpoint (LocalStack in Docker where an engine
# runs, moto server from a pinned venv otherwise), runs every test of the workspace against it,
# and stops the endpoint again. Extra arguments go to `cargo test`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

"$root/localstack/start.sh"
if [[ "${DJ_KEEP_ENDPOINT:-0}" != 1 ]]; then
  trap '"$root/localstack/stop.sh" >/dev/null 2>&1 || true' EXIT
fi
set -a
# shellcheck disable=SC1091
source "$root/.dj/endpoint.env"
set +a
# The runtime emulator (`cargo lambda watch`) that runs the function binaries in tests.
venv="$("$root/scripts/install-emulator.sh")"
export DJ_VENV="$venv"
# The integration tests read Parquet files back with pyarrow and DuckDB from this interpreter.
export DJ_PYTHON="${DJ_PYTHON:-${DJ_VENV:-$root/.venv}/bin/python}"

cargo test --workspace --locked "$@"
