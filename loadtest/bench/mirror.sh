#!/usr/bin/env bash
# What [routes.mirror] and [[routes.signals]] cost the live path: one serin,
# three routes to the same fake version, measured side by side in one run.
#   plain     v1 alone
#   signals   v1 alone, with two quality signals read off every answer
#   mirrored  v1, every request (percent = 100) also copied to v2 and
#             compared on status and body
# Closed loop (as fast as it goes, 64 connections) for throughput, then
# open loop at --rate for latency, each route in turn, --rounds times.
#
#   loadtest/bench/mirror.sh [--rounds 3] [--seconds 10] [--rate 2000] [--workers 1] [--no-build]
#
# Prints a Markdown table. Loopback only; bounded in time; only processes it
# started are stopped.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bench=$root/loadtest/bench
ROUNDS=3 SECONDS_EACH=10 RATE=2000 WORKERS=1 BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift ;;
    --seconds) SECONDS_EACH=$2; shift ;;
    --rate) RATE=$2; shift ;;
    --workers) WORKERS=$2; shift ;;
    --no-build) BUILD=0 ;;
    *) echo "mirror.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
started=$(date +%s)
log() { printf '[%4ss] %s\n' $(( $(date +%s) - started )) "$*" >&2; }
source "$bench/lib.sh"
if [ "$BUILD" = 1 ]; then
  timeout 1800 cargo build --release --bin serin --bin serin-load
fi
BIN=$root/target/release
work=$(mktemp -d /tmp/serin-mirror.XXXXXX)
start_cleanup
P_V1=19601 P_V2=19602 P_SERIN=19680 P_ADMIN=19690
for p in $P_V1 $P_V2 $P_SERIN $P_ADMIN; do
  port_open "$p" && { echo "mirror.sh: 127.0.0.1:$p is already in use" >&2; exit 1; }
done
cat >"$work/serin.toml" <<TOML
[listen]
http = "127.0.0.1:$P_SERIN"
[admin]
addr = "127.0.0.1:$P_ADMIN"
[state]
dir = "$work/state"

[[routes]]
name = "plain"
path_prefix = "/plain"
  [[routes.versions]]
  name = "v1"
  url = "http://127.0.0.1:$P_V1"
  weight = 1

[[routes]]
name = "signals"
path_prefix = "/signals"
  [[routes.versions]]
  name = "v1"
  url = "http://127.0.0.1:$P_V1"
  weight = 1
  [[routes.signals]]
  name = "flag"
  header = "x-quality-flag"
  [[routes.signals]]
  name = "score"
  header = "x-quality-score"

[[routes]]
name = "mirrored"
path_prefix = "/mirrored"
  [[routes.versions]]
  name = "v1"
  url = "http://127.0.0.1:$P_V1"
  weight = 1
  [[routes.versions]]
  name = "v2"
  url = "http://127.0.0.1:$P_V2"
  weight = 0
  [routes.mirror]
  to = "v2"
  percent = 100
  compare = ["status", "body"]
  queue = 256
TOML
"$BIN/serin-load" upstream --name v1 --listen 127.0.0.1:$P_V1 >"$work/v1.log" 2>&1 & pids+=($!)
"$BIN/serin-load" upstream --name v2 --listen 127.0.0.1:$P_V2 >"$work/v2.log" 2>&1 & pids+=($!)
wait_port $P_V1; wait_port $P_V2
SERIN_LOG=warn "$BIN/serin" run --config "$work/serin.toml" --workers "$WORKERS" >"$work/serin.log" 2>&1 & pids+=($!)
wait_port $P_SERIN

load() { # PATH RATE -> "rps p50 p99 errors"
  timeout $(( SECONDS_EACH + 60 )) "$BIN/serin-load" --url "http://127.0.0.1:$P_SERIN$1" \
    --rate "$2" --duration "${SECONDS_EACH}s" --connections 64 --json \
  | python3 -c 'import json,sys; r=json.load(sys.stdin); print(round(r["throughput_rps"]), r["p50_ms"], r["p99_ms"], r["errors"])'
}
declare -A RPS P99 ERR
for r in $(seq "$ROUNDS"); do
  for route in plain signals mirrored; do
    read -r rps _ _ e1 <<<"$(load "/$route/" 0)"
    read -r _ _ p99 e2 <<<"$(load "/$route/" "$RATE")"
    log "round $r $route: $rps req/s closed loop; p99 $p99 ms at $RATE req/s; errors $e1 + $e2"
    RPS[$route]+="$rps "; P99[$route]+="$p99 "; ERR[$route]=$(( ${ERR[$route]:-0} + e1 + e2 ))
  done
done
mirror=$(curl -s "http://127.0.0.1:$P_ADMIN/api/v1/routes/mirrored/mirror?window=15m" \
  | python3 -c 'import json,sys; m=json.load(sys.stdin); print(m["sent"], m["shed"], m["compared"])')
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "| route | req/s closed loop (median of $ROUNDS) | vs plain | p99 ms at $RATE req/s (median) | failed requests |"
echo "|---|---|---|---|---|"
base=$(echo "${RPS[plain]}" | median)
for route in plain signals mirrored; do
  rps=$(echo "${RPS[$route]}" | median)
  p99=$(echo "${P99[$route]}" | median)
  ratio=$(python3 -c "print(f'{$rps/$base:.2f}×')")
  echo "| $route | $rps | $ratio | $p99 | ${ERR[$route]} |"
done
read -r sent shed compared <<<"$mirror"
echo
echo "Mirror: $sent copies sent, $shed shed (queue 256), $compared compared in the last 15 minutes; workers $WORKERS."
