#!/usr/bin/env bash
# RSS per idle pooled upstream connection: N requests at once (default
# 10,000) through serin to a version that answers each after 2 s, so serin
# opens N connections to it; once the load generator has finished and its
# own connections are closed, those N connections idle in serin's pool.
# Measured against the same burst with a pool that keeps none, so the
# memory the allocator keeps from the burst itself cancels out.
#
#   loadtest/bench/pool.sh [--idle 10000] [--workers 1] [--no-build]
#
# Prints one Markdown table row set. Loopback only; bounded in time; only
# processes it started are stopped.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bench=$root/loadtest/bench
IDLE=10000 WORKERS=1 BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --idle) IDLE=$2; shift ;;
    --workers) WORKERS=$2; shift ;;
    --no-build) BUILD=0 ;;
    *) echo "pool.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
started=$(date +%s)
log() { printf '[%4ss] %s\n' $(( $(date +%s) - started )) "$*" >&2; }
source "$bench/lib.sh"
need ss iproute2
if [ "$BUILD" = 1 ]; then
  timeout 1800 cargo build --release --bin serin --bin serin-load
fi
BIN=$root/target/release
# N connections on three sides (load → serin → version) need descriptors.
ulimit -Hn 65536 2>/dev/null || true
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt $(( IDLE * 2 + 1000 )) ]; then
  IDLE=$(( ($(ulimit -n) - 1000) / 2 ))
  log "ulimit -n is $(ulimit -n): $IDLE connections instead"
fi
work=$(mktemp -d /tmp/serin-pool.XXXXXX)
start_cleanup
P_V1=19501 P_SERIN=19580 P_ADMIN=19590
for p in $P_V1 $P_SERIN $P_ADMIN; do
  port_open "$p" && { echo "pool.sh: 127.0.0.1:$p is already in use" >&2; exit 1; }
done
# The same burst twice, on a fresh serin each time: once with
# `upstream_max_idle = 0` (every connection closed after its exchange),
# once keeping them all. Both keep whatever the allocator held on to of
# the burst's freed memory; the difference is what the idle pooled
# connections cost.
one() { # MAX_IDLE -> "pooled rss0 rss1 ok failed"
  cat >"$work/serin.toml" <<TOML
[listen]
http = "127.0.0.1:$P_SERIN"
[admin]
addr = "127.0.0.1:$P_ADMIN"
[state]
dir = "$work/state-$1"
[limits]
max_connections = $(( IDLE + 2048 ))
upstream_max_idle = $1
[[routes]]
name = "svc"
  [[routes.versions]]
  name = "v1"
  url = "http://127.0.0.1:$P_V1"
  weight = 1
TOML
  local sp rss0 rss1 pooled ok
  SERIN_LOG=warn "$BIN/serin" run --config "$work/serin.toml" --workers "$WORKERS" >"$work/serin-$1.log" 2>&1 & sp=$!; pids+=($sp)
  wait_port $P_SERIN
  # One request first, so the runtime, the pool and its sweeper exist.
  curl -s -o /dev/null "http://127.0.0.1:$P_SERIN/"
  sleep 1
  rss0=$(awk '/VmRSS/{print $2}' "/proc/$sp/status")
  timeout 120 "$BIN/serin-load" --url "http://127.0.0.1:$P_SERIN/delay?ms=2000" --rate 0 \
    --duration 1s --connections "$IDLE" --timeout 30s --json >"$work/load-$1.json"
  sleep 2
  pooled=$(ss -Htn state established "( dport = :$P_V1 )" | wc -l)
  rss1=$(awk '/VmRSS/{print $2}' "/proc/$sp/status")
  ok=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["ok"], r["errors"])' "$work/load-$1.json")
  stop_pid "$sp"; forget "$sp"
  echo "$pooled $rss0 $rss1 $ok"
}

"$BIN/serin-load" upstream --name v1 --listen 127.0.0.1:$P_V1 >"$work/v1.log" 2>&1 & pids+=($!)
wait_port $P_V1
read -r a_pooled a0 a1 a_ok a_err <<<"$(one 0)"
log "upstream_max_idle = 0: $a_pooled pooled, RSS $a0 → $a1 KiB, $a_ok ok, $a_err failed"
read -r b_pooled b0 b1 b_ok b_err <<<"$(one "$IDLE")"
log "upstream_max_idle = $IDLE: $b_pooled pooled, RSS $b0 → $b1 KiB, $b_ok ok, $b_err failed"
per=$(( ( (b1 - b0) - (a1 - a0) ) * 1024 / (b_pooled > 0 ? b_pooled : 1) ))
echo "| upstream_max_idle | requests ok, failed | idle pooled upstream connections | RSS before → after the burst (KiB) |"
echo "|---|---|---|---|"
echo "| 0 | $a_ok, $a_err | $a_pooled | $a0 → $a1 |"
echo "| $IDLE | $b_ok, $b_err | $b_pooled | $b0 → $b1 |"
echo
echo "Per idle pooled upstream connection: $per bytes (the second burst's growth minus the first's, over $b_pooled connections; workers $WORKERS)."
