#!/usr/bin/env bash
# Fuzz serin's admin API against its own OpenAPI document with schemathesis
# (installed from PyPI into target/schemathesis-venv on first use). Starts two
# fake versions and a serin on loopback with an admin token, runs every
# schemathesis check (no 5xx, status codes, content types, response schemas,
# negative/positive data, auth ...), stops everything by PID. Bounded:
# MAX_EXAMPLES per operation (default 60) and MAX_TIME seconds (default 150).
#
#   tests/fuzz/schemathesis.sh            exit 0 = no failure found
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
MAX_EXAMPLES=${MAX_EXAMPLES:-60}
MAX_TIME=${MAX_TIME:-150}
TOKEN=fuzz-token-$RANDOM$RANDOM

venv=$root/target/schemathesis-venv
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "schemathesis==4.32.5"
fi
cargo build -q --bin serin --bin serin-load
BIN=$root/target/debug

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P_V1=$(free_port) P_V2=$(free_port) P_HTTP=$(free_port) P_ADMIN=$(free_port)
"$BIN/serin-load" upstream --name v1 --listen 127.0.0.1:"$P_V1" >/dev/null & pids+=($!)
"$BIN/serin-load" upstream --name v2 --listen 127.0.0.1:"$P_V2" >/dev/null & pids+=($!)

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
  gradual = { steps = ["5%", "0%"], every = "10s" }
TOML

SERIN_ADMIN_TOKEN=$TOKEN SERIN_LOG=warn "$BIN/serin" run --config "$work/serin.toml" --workers 2 \
  2>"$work/serin.log" & pids+=($!)
for _ in $(seq 100); do
  (exec 3<>/dev/tcp/127.0.0.1/"$P_ADMIN") 2>/dev/null && break
  sleep 0.1
done

# Half the cases name the real route and revision (happy paths, response
# schemas), half are generated (unknown names: 404 paths).
#
# positive_data_acceptance also accepts 422: a schema-valid body can still
# name a version the route does not have (the document cannot list a
# route's versions; 422 is the documented answer for that).
cat >"$work/checks.toml" <<CONF
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "401", "404", "409", "422"]
CONF
{ cat "$work/checks.toml"; printf '[parameters]\n"path.route" = "svc"\n"path.id" = "r1"\n'; } >"$work/real.toml"

status=0
run() {
  # From the temp dir: schemathesis leaves a .schemathesis/ cache behind.
  (cd "$work" && "$venv/bin/schemathesis" --config-file "$1" run "http://127.0.0.1:$P_ADMIN/api/v1/openapi.json" \
    --checks all -H "Authorization: Bearer $TOKEN" \
    --max-examples "$MAX_EXAMPLES" --max-time "$((MAX_TIME / 2))" \
    --request-timeout 10 --no-color --seed 1) || status=$?
}
echo "== schemathesis: real route and revision"
run "$work/real.toml"
echo "== schemathesis: generated names"
run "$work/checks.toml"

if grep -q "panicked" "$work/serin.log"; then
  echo "serin panicked:"; cat "$work/serin.log"; status=1
fi
kill -0 "${pids[2]}" 2>/dev/null || { echo "serin died"; status=1; }
exit $status
