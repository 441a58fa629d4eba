#!/usr/bin/env bash
# Property-based tests of serin's OpenAPI document (schemathesis, every
# check, stateful links) against a running serin with two fake versions.
#
#   tests/api/run.sh [--bin target/debug]
#
# Installs schemathesis from PyPI when missing. Loopback only; the
# processes it starts are stopped by PID; exits with schemathesis's code.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$root/target/debug
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) BIN=$2; shift ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if ! command -v st >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check "schemathesis>=4,<5"
fi
work=$(mktemp -d /tmp/serin-api.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P_V1=$(free_port) P_V2=$(free_port) P_HTTP=$(free_port) P_ADMIN=$(free_port)
cat >"$work/serin.toml" <<TOML
[listen]
http = "127.0.0.1:$P_HTTP"
[admin]
addr = "127.0.0.1:$P_ADMIN"
[state]
dir = "$work/state"
[[routes]]
name = "svc"
  [[routes.versions]]
  name = "v1"
  url = "http://127.0.0.1:$P_V1"
  weight = 90
  [[routes.versions]]
  name = "v2"
  url = "http://127.0.0.1:$P_V2"
  weight = 10
  [routes.rollback]
  stable = "v1"
  window = "30s"
  confirm = "1s"
  critical = ["error_rate > 50%"]
TOML
"$BIN/serin-load" upstream --name v1 --listen "127.0.0.1:$P_V1" >"$work/v1.log" 2>&1 & pids+=($!)
"$BIN/serin-load" upstream --name v2 --listen "127.0.0.1:$P_V2" >"$work/v2.log" 2>&1 & pids+=($!)
SERIN_ADMIN_TOKEN=api-test-token "$BIN/serin" run -c "$work/serin.toml" >"$work/serin.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$P_ADMIN") 2>/dev/null && break
  sleep 0.1
done
cd "$root/tests/api"
timeout 600 st --config-file schemathesis.toml run "http://127.0.0.1:$P_ADMIN/api/v1/openapi.json" \
  --url "http://127.0.0.1:$P_ADMIN" -H "Authorization: Bearer api-test-token" \
  --checks all --max-examples 25 --seed 1 --no-color
