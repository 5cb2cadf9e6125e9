#!/usr/bin/env bash
# Start (or reuse) a local AWS endpoint and write <repo>/.dj/endpoint.env:
#
#   localstack/start.sh && source .dj/endpoint.env
#
# Choice, in order:
#   1. DJ_ENDPOINT_URL is set      -> use that endpoint as is (nothing started)
#   2. a Docker engine answers     -> LocalStack from localstack/docker-compose.yml
#   3. otherwise                   -> moto_server from the pinned venv, in the background
# A live endpoint recorded by an earlier start is reused. Safe to call from any
# directory and from several processes at once.
#
# Environment: DJ_ENDPOINT_URL, DJ_MOTO_PORT (default: a free port),
# DJ_LOCALSTACK_PORT (default 4566), LOCALSTACK_AUTH_TOKEN (passed to the
# container), DJ_START_TIMEOUT (seconds, default 90), DJ_VENV (see venv.sh),
# DJ_FORCE_MOTO=1 (skip the Docker probe).
set -euo pipefail

die() { echo "start.sh: error: $*" >&2; exit 1; }
log() { echo "start.sh: $*" >&2; }

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
ROOT="$(cd -- "$SCRIPT_DIR/.." && pwd -P)"
STATE="$ROOT/.dj"
ENV_FILE="$STATE/endpoint.env"
MOTO_PID="$STATE/moto.pid"
MOTO_LOG="$STATE/moto.log"
COMPOSE_MARK="$STATE/localstack.project"
COMPOSE_FILE="$SCRIPT_DIR/docker-compose.yml"
TIMEOUT="${DJ_START_TIMEOUT:-90}"

mkdir -p "$STATE"

# One start/stop at a time per checkout. Children get '8>&-' so that nothing
# long-lived keeps holding the lock.
if command -v flock >/dev/null 2>&1; then
  exec 8>"$STATE/endpoint.lock"
  flock -w "$((TIMEOUT + 900))" 8 || die "timed out waiting for $STATE/endpoint.lock"
fi

# ---------------------------------------------------------------- helpers ---
# http_status URL -> prints the HTTP status code, or 000 when nothing answers.
http_status() {
  if command -v curl >/dev/null 2>&1; then
    local code
    code="$(curl -s -o /dev/null -m 5 -w '%{http_code}' "$1" 2>/dev/null)" || true
    echo "${code:-000}"
  else
    python3 - "$1" <<'PY' 2>/dev/null || echo 000
import sys, urllib.request, urllib.error
try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
        print(r.status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print("000")
PY
  fi
}

# endpoint_kind URL -> moto | localstack | external (prints nothing if it does not answer)
endpoint_kind() {
  local url="${1%/}"
  if [[ "$(http_status "$url/_localstack/health")" == 200 ]]; then echo localstack
  elif [[ "$(http_status "$url/moto-api/")" == 200 ]]; then echo moto
  elif [[ "$(http_status "$url/")" != 000 ]]; then echo external
  fi
}

pid_is_moto() {
  local pid="$1"
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null \
    && grep -qa moto_server "/proc/$pid/cmdline" 2>/dev/null
}

write_env() { # url kind
  local tmp="$ENV_FILE.tmp.$$"
  cat >"$tmp" <<EOF
# Written by localstack/start.sh - local endpoint with dummy credentials only.
# Use: source $ENV_FILE
export AWS_ENDPOINT_URL=$1
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
export DJ_ENDPOINT_KIND=$2
EOF
  mv -f "$tmp" "$ENV_FILE"
  log "endpoint $1 ($2) -> $ENV_FILE"
  echo "$ENV_FILE"
}

recorded_url() { # prints AWS_ENDPOINT_URL from the env file, if any
  [[ -f "$ENV_FILE" ]] && sed -n 's/^export AWS_ENDPOINT_URL=//p' "$ENV_FILE" | head -n1
  return 0
}

wait_until_up() { # url probe-path pid-or-empty what
  local url="${1%/}" path="$2" pid="$3" what="$4" waited=0
  while [[ "$(http_status "$url$path")" != 200 ]]; do
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
      echo "start.sh: $what exited before answering on $url; last lines of its log:" >&2
      tail -n 20 "$MOTO_LOG" >&2 2>/dev/null || true
      echo "start.sh: (full log: $MOTO_LOG)" >&2
      return 1
    fi
    if (( waited >= TIMEOUT )); then
      echo "start.sh: $what did not answer on $url$path within ${TIMEOUT}s (DJ_START_TIMEOUT)" >&2
      return 1
    fi
    sleep 1
    waited=$((waited + 1))
  done
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# ------------------------------------------------- 1. explicit endpoint ---
if [[ -n "${DJ_ENDPOINT_URL:-}" ]]; then
  url="${DJ_ENDPOINT_URL%/}"
  waited=0
  until kind="$(endpoint_kind "$url")" && [[ -n "$kind" ]]; do
    (( waited >= TIMEOUT )) && die "DJ_ENDPOINT_URL=$url does not answer (waited ${TIMEOUT}s)"
    sleep 1; waited=$((waited + 1))
  done
  write_env "$url" "$kind"
  exit 0
fi

# --------------------------------------------- reuse a previous start ---
prev="$(recorded_url)"
if [[ -n "$prev" ]]; then
  kind="$(endpoint_kind "$prev" || true)"
  if [[ -f "$MOTO_PID" ]]; then
    # Only reuse a moto we started ourselves (the pid file says which).
    if [[ "$kind" == moto ]] && pid_is_moto "$(cat "$MOTO_PID")"; then
      log "reusing moto_server (pid $(cat "$MOTO_PID")) on $prev"
      echo "$ENV_FILE"
      exit 0
    fi
  elif [[ -f "$COMPOSE_MARK" ]]; then
    if [[ "$kind" == localstack ]]; then
      log "reusing LocalStack on $prev"
      echo "$ENV_FILE"
      exit 0
    fi
  elif [[ -n "$kind" ]]; then
    # Recorded from DJ_ENDPOINT_URL earlier and still answering.
    log "reusing $prev ($kind)"
    echo "$ENV_FILE"
    exit 0
  fi
  log "recorded endpoint $prev is gone; starting a new one"
  rm -f "$ENV_FILE"
fi
# Stale moto from an earlier start whose env file went missing: stop it.
if [[ -f "$MOTO_PID" ]]; then
  old="$(cat "$MOTO_PID")"
  if pid_is_moto "$old"; then kill "$old" 2>/dev/null || true; fi
  rm -f "$MOTO_PID"
fi

# ------------------------------------------------------ 2. LocalStack ---
docker_ok=0
if [[ "${DJ_FORCE_MOTO:-0}" != 1 ]] && command -v docker >/dev/null 2>&1; then
  if command -v timeout >/dev/null 2>&1; then
    timeout 20 docker info >/dev/null 2>&1 && docker_ok=1
  else
    docker info >/dev/null 2>&1 && docker_ok=1
  fi
fi

if (( docker_ok )); then
  if docker compose version >/dev/null 2>&1; then compose=(docker compose)
  elif command -v docker-compose >/dev/null 2>&1; then compose=(docker-compose)
  else die "a Docker engine answers but neither 'docker compose' nor 'docker-compose' is installed (or set DJ_FORCE_MOTO=1)"
  fi
  [[ -n "${LOCALSTACK_AUTH_TOKEN:-}" ]] \
    || log "warning: LOCALSTACK_AUTH_TOKEN is not set; recent LocalStack images refuse to start without it"
  port="${DJ_LOCALSTACK_PORT:-4566}"
  project="dj-$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1)"
  log "starting LocalStack (compose project $project) on 127.0.0.1:$port"
  DJ_LOCALSTACK_PORT="$port" "${compose[@]}" -f "$COMPOSE_FILE" -p "$project" up -d >&2 8>&- \
    || die "docker compose up failed (see output above)"
  echo "$project" >"$COMPOSE_MARK"
  url="http://127.0.0.1:$port"
  if ! wait_until_up "$url" /_localstack/health "" LocalStack; then
    "${compose[@]}" -f "$COMPOSE_FILE" -p "$project" logs --tail 40 >&2 || true
    die "LocalStack did not become ready (logs above); stop it with localstack/stop.sh"
  fi
  write_env "$url" localstack
  exit 0
fi

# ------------------------------------------------------------ 3. moto ---
VENV="$("$SCRIPT_DIR/venv.sh" 8>&-)" || die "could not prepare the Python venv (see above)"
[[ -x "$VENV/bin/moto_server" ]] || die "$VENV/bin/moto_server is missing; delete $VENV and retry"

attempts=1
[[ -z "${DJ_MOTO_PORT:-}" ]] && attempts=5   # a picked free port can be taken meanwhile
for ((i = 1; i <= attempts; i++)); do
  port="${DJ_MOTO_PORT:-$(free_port)}"
  url="http://127.0.0.1:$port"
  if [[ "$(http_status "$url/")" != 000 ]]; then
    [[ -n "${DJ_MOTO_PORT:-}" ]] && die "port $port (DJ_MOTO_PORT) is already in use"
    continue
  fi
  log "starting moto_server on $url (log: $MOTO_LOG)"
  # The log belongs to the current server only.
  echo "=== $(date -u +%Y-%m-%dT%H:%M:%SZ) moto_server -H 127.0.0.1 -p $port" >"$MOTO_LOG"
  # Detached from the caller (own session, no terminal, output to the log
  # only); the launcher prints the server's pid.
  pid="$("$VENV/bin/python" - "$MOTO_LOG" "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" 8>&- <<'PY'
import subprocess, sys
log = open(sys.argv[1], "ab")
p = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=log,
                     stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
print(p.pid)
PY
)" || die "could not launch $VENV/bin/moto_server"
  echo "$pid" >"$MOTO_PID"
  if wait_until_up "$url" /moto-api/ "$pid" moto_server; then
    pid_is_moto "$pid" || die "process $pid answering on $url is not moto_server"
    write_env "$url" moto
    exit 0
  fi
  kill "$pid" 2>/dev/null || true
  rm -f "$MOTO_PID"
done
die "could not start moto_server (see $MOTO_LOG)"
