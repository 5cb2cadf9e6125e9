#!/usr/bin/env bash
# Deploy infra/template.yaml to the local endpoint recorded by start.sh:
#
#   localstack/deploy.sh --stack dj-dev --prefix dj-dev [deploy.py options]
#
# Sources <repo>/.dj/endpoint.env (run localstack/start.sh first), makes sure
# the pinned venv exists, and runs localstack/deploy.py with its python. The
# stack outputs are printed on stdout as JSON.
set -euo pipefail

die() { echo "deploy.sh: error: $*" >&2; exit 1; }

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
ROOT="$(cd -- "$SCRIPT_DIR/.." && pwd -P)"
ENV_FILE="$ROOT/.dj/endpoint.env"

[[ -f "$ENV_FILE" ]] || die "$ENV_FILE not found: run localstack/start.sh first"
# shellcheck source=/dev/null
source "$ENV_FILE"
VENV="$("$SCRIPT_DIR/venv.sh")" || die "could not prepare the Python venv"
exec "$VENV/bin/python" "$SCRIPT_DIR/deploy.py" "$@"
