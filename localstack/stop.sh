#!/usr/bin/env bash
# Stop what localstack/start.sh started (moto_server, or the LocalStack compose
# project) and remove <repo>/.dj/endpoint.env. An endpoint given through
# DJ_ENDPOINT_URL is not ours and is left running. Safe to call twice.
set -euo pipefail

die() { echo "stop.sh: error: $*" >&2; exit 1; }
log() { echo "stop.sh: $*" >&2; }

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
ROOT="$(cd -- "$SCRIPT_DIR/.." && pwd -P)"
STATE="$ROOT/.dj"
ENV_FILE="$STATE/endpoint.env"
MOTO_PID="$STATE/moto.pid"
COMPOSE_MARK="$STATE/localstack.project"
COMPOSE_FILE="$SCRIPT_DIR/docker-compose.yml"

[[ -d "$STATE" ]] || { log "nothing to stop"; exit 0; }

if command -v flock >/dev/null 2>&1; then
  exec 8>"$STATE/endpoint.lock"
  flock -w 120 8 || die "timed out waiting for $STATE/endpoint.lock"
fi

stopped=0

# True while pid runs moto_server (a zombie has an empty cmdline: not running).
is_moto() {
  [[ "$1" =~ ^[0-9]+$ ]] && kill -0 "$1" 2>/dev/null \
    && grep -qa moto_server "/proc/$1/cmdline" 2>/dev/null
}

if [[ -f "$MOTO_PID" ]]; then
  pid="$(cat "$MOTO_PID")"
  if is_moto "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      is_moto "$pid" || break
      sleep 0.2
    done
    if is_moto "$pid"; then
      log "moto_server (pid $pid) ignored SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    log "stopped moto_server (pid $pid)"
    stopped=1
  else
    log "moto_server from $MOTO_PID (pid $pid) is not running"
  fi
  rm -f "$MOTO_PID"
fi

if [[ -f "$COMPOSE_MARK" ]]; then
  project="$(cat "$COMPOSE_MARK")"
  if docker compose version >/dev/null 2>&1; then compose=(docker compose)
  elif command -v docker-compose >/dev/null 2>&1; then compose=(docker-compose)
  else die "cannot stop compose project $project: neither 'docker compose' nor 'docker-compose' found"
  fi
  "${compose[@]}" -f "$COMPOSE_FILE" -p "$project" down --remove-orphans >&2 8>&- \
    || die "docker compose down failed for project $project"
  log "stopped LocalStack (compose project $project)"
  rm -f "$COMPOSE_MARK"
  stopped=1
fi

rm -f "$ENV_FILE"
(( stopped )) || log "nothing was running that start.sh had started"
exit 0
