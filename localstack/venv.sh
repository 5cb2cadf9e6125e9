#!/usr/bin/env bash
# Create (or reuse) the Python virtualenv with the pinned tools from
# localstack/requirements.txt: moto server, boto3, pyarrow, duckdb, cfn-lint.
#
#   localstack/venv.sh            -> prints the venv directory on stdout
#   DJ_VENV=/some/dir localstack/venv.sh
#
# The venv lives in <repo>/.venv unless DJ_VENV says otherwise. A stamp file
# holding the hash of requirements.txt and the Python version makes repeated
# calls cheap; when the requirements change the venv is rebuilt from scratch.
set -euo pipefail

die() { echo "venv.sh: error: $*" >&2; exit 1; }
log() { echo "venv.sh: $*" >&2; }

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
ROOT="$(cd -- "$SCRIPT_DIR/.." && pwd -P)"
REQ="$SCRIPT_DIR/requirements.txt"
VENV="${DJ_VENV:-$ROOT/.venv}"
PYTHON="${DJ_PYTHON:-python3}"

[[ -f "$REQ" ]] || die "missing $REQ"
command -v "$PYTHON" >/dev/null 2>&1 || die "'$PYTHON' not found (need Python 3.11+; set DJ_PYTHON to choose another interpreter)"
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
  || die "$("$PYTHON" -V 2>&1) is too old: Python 3.11+ is required (set DJ_PYTHON)"

hash_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum | cut -d' ' -f1
  else
    "$PYTHON" -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())'
  fi
}
WANT="$({ cat "$REQ"; "$PYTHON" -c 'import sys; print(sys.version)'; } | hash_of)"
STAMP="$VENV/.dj-requirements.sha256"

is_current() {
  [[ -f "$STAMP" && -x "$VENV/bin/python" ]] && [[ "$(cat "$STAMP")" == "$WANT" ]]
}

if is_current; then
  echo "$VENV"
  exit 0
fi

# Never delete a directory that is not a venv (DJ_VENV pointing somewhere odd).
if [[ -e "$VENV" && ! -f "$VENV/pyvenv.cfg" ]] && [[ -n "$(ls -A -- "$VENV" 2>/dev/null)" ]]; then
  die "$VENV exists and is not a virtualenv; refusing to replace it (choose another DJ_VENV)"
fi

# Serialise concurrent callers (parallel test runs).
mkdir -p "$(dirname -- "$VENV")"
if [[ -z "${DJ_VENV:-}" ]]; then
  mkdir -p "$ROOT/.dj"
  LOCK="$ROOT/.dj/venv.lock"
else
  LOCK="$VENV.lock"
fi
if command -v flock >/dev/null 2>&1; then
  exec 9>"$LOCK"
  flock -w 900 9 || die "timed out waiting for $LOCK (another venv.sh is still installing?)"
  if is_current; then   # somebody else finished while we waited
    echo "$VENV"
    exit 0
  fi
fi

log "creating $VENV from $REQ (this downloads wheels from PyPI once)"
rm -rf -- "$VENV"
"$PYTHON" -m venv "$VENV" || die "'$PYTHON -m venv $VENV' failed (on Debian: apt-get install python3-venv)"
# --no-deps + a full lock: nothing unpinned can sneak in; pip check proves the
# lock is complete. Wheels only, so nothing is compiled.
if ! "$VENV/bin/python" -m pip install --disable-pip-version-check --quiet \
       --only-binary :all: --no-deps -r "$REQ" >&2; then
  rm -rf -- "$VENV"
  die "pip install -r $REQ failed (is PyPI reachable?)"
fi
if ! "$VENV/bin/python" -m pip check >&2; then
  rm -rf -- "$VENV"
  die "requirements.txt is not a complete lock (pip check failed); regenerate it as described in requirements.in"
fi
echo "$WANT" >"$STAMP"
log "ready: $VENV"
echo "$VENV"
