#!/usr/bin/env bash
# serin vs nginx vs HAProxy vs a direct connection, all three proxies set up
# as the same weighted 90/10 proxy (keep-alive to the upstreams) over the same
# two fake versions, measured in ONE interleaved run (direct, serin, nginx,
# HAProxy, direct, serin, ... for N rounds) with the same load generators, at
# 1 and at 2 proxy worker threads:
#   (a) max throughput, 64 connections: serin-load --rate 0 and wrk -c64
#   (b) latency percentiles at a fixed moderate rate (serin-load open loop)
#   (c) RSS with 10,000 idle keep-alive connections held open (hold.py)
#   (d) CPU seconds per 10k requests, from /proc/PID/stat around (b)
# and two serin-only comparisons in the same rounds:
#   (e) a route with fallback chain + breaker (/safe) vs the plain route (/plain)
#   (f) telemetry on vs off (a second serin with SERIN_TELEMETRY=off)
#
#   loadtest/bench/bench.sh [--quick] [--rounds N] [--duration 5s] [--rate 2000]
#                           [--idle 10000] [--workers "1 2"] [--no-build]
#
# Writes loadtest/bench/raw.jsonl (every measurement), results.md and
# latency.svg (summarize.py). Loopback only; every step is bounded in time;
# only processes this script started are stopped, by PID, on exit.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bench=$root/loadtest/bench
cd "$root"

DUR=5s ROUNDS=4 RATE=2000 IDLE=10000 WORKERS="1 2" BUILD=1 QUICK=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1; DUR=2s; ROUNDS=1 ;;
    --rounds) ROUNDS=$2; shift ;;
    --duration) DUR=$2; shift ;;
    --rate) RATE=$2; shift ;;
    --idle) IDLE=$2; shift ;;
    --workers) WORKERS=$2; shift ;;
    --no-build) BUILD=0 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
case "$DUR" in *s) dur_s=${DUR%s} ;; *) echo "bench.sh: --duration wants seconds, e.g. 6s" >&2; exit 2 ;; esac
started=$(date +%s)
log() { printf '[%4ss] %s\n' $(( $(date +%s) - started )) "$*" >&2; }

# --- tools -----------------------------------------------------------------
source "$bench/lib.sh"
need nginx nginx
need haproxy haproxy
need wrk wrk
if [ "$BUILD" = 1 ]; then
  log "cargo build --release --bin serin --bin serin-load"
  timeout 1800 cargo build --release --bin serin --bin serin-load
fi
BIN=$root/target/release

# 10,000 idle connections need 10,000 descriptors on each side.
ulimit -Hn 65536 2>/dev/null || true
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt $((IDLE + 1000)) ]; then
  IDLE=$(( $(ulimit -n) - 1000 ))
  log "ulimit -n is $(ulimit -n): holding $IDLE idle connections instead"
fi

work=$(mktemp -d /tmp/serin-bench.XXXXXX)
start_cleanup
# A watchdog: the whole run is bounded, whatever hangs.
max_run=$(( QUICK ? 420 : 1500 ))
(
  trap 'kill "$sp" 2>/dev/null; wait "$sp"; exit 0' TERM
  sleep "$max_run" & sp=$!
  wait "$sp" && { echo "bench.sh: over ${max_run}s, giving up" >&2; kill -TERM $$; }
) & pids+=($!)

P_V1=19101 P_V2=19102 P_SERIN=19180 P_NGINX=19181 P_HAPROXY=19182 P_NOTEL=19183 P_ADMIN=19190 P_ADMIN2=19193
for p in $P_V1 $P_V2 $P_SERIN $P_NGINX $P_HAPROXY $P_NOTEL $P_ADMIN $P_ADMIN2; do
  port_open "$p" && { echo "bench.sh: 127.0.0.1:$p is already in use" >&2; exit 1; }
done
# --- the same 90/10 proxy, three ways ----------------------------------------
serin_toml "$work/serin.toml" $P_SERIN $P_ADMIN "$work/state"
serin_toml "$work/serin-notel.toml" $P_NOTEL $P_ADMIN2 "$work/state-notel"

haproxy_conf() { # WORKERS
  cat >"$work/haproxy.cfg" <<HAPROXY
global
  nbthread $1
  maxconn $(( IDLE + 2048 ))
  # HAProxy wants 2 descriptors per connection and refuses to start when it
  # cannot raise the limit that far; idle client connections need only one.
  no strict-limits
defaults
  mode http
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  timeout http-keep-alive 300s
  option http-keep-alive
  option forwardfor
  http-reuse always
frontend bench
  bind 127.0.0.1:$P_HAPROXY
  default_backend versions
backend versions
  balance roundrobin
  server v1 127.0.0.1:$P_V1 weight 9
  server v2 127.0.0.1:$P_V2 weight 1
HAPROXY
}

# --- measurements ----------------------------------------------------------
raw=$work/raw.jsonl
: >"$raw"
probe() { python3 "$bench/probe.py" "$@"; }
declare -A PORT=([direct]=$P_V1 [serin]=$P_SERIN [serin-safe]=$P_SERIN [serin-notel]=$P_NOTEL [nginx]=$P_NGINX [haproxy]=$P_HAPROXY)
declare -A PATH_OF=([direct]=/plain [serin]=/plain [serin-safe]=/safe [serin-notel]=/plain [nginx]=/plain [haproxy]=/plain)
declare -A PID
url() { echo "http://127.0.0.1:${PORT[$1]}${PATH_OF[$1]}"; }
MAIN="direct serin nginx haproxy"
ALL="direct serin serin-safe serin-notel nginx haproxy"
bound=$(( dur_s + 30 ))

load() { # OUT ARGS...: one serin-load run, JSON report into OUT
  local out=$1; shift
  timeout "$bound" "$BIN/serin-load" "$@" --json >"$out" 2>>"$work/serin-load.err" || log "serin-load failed: $*"
}

measure_max() { # TARGET WORKERS ROUND
  load "$work/m.json" --url "$(url "$1")" --rate 0 --duration "$DUR" --connections 64
  probe emit kind=max target="$1" workers="$2" round="$3" report=@"$work/m.json" >>"$raw"
}
measure_wrk() {
  timeout "$bound" wrk -t2 -c64 -d"$DUR" --timeout 5s --latency "$(url "$1")" >"$work/w.txt" 2>&1 || log "wrk failed on $1"
  probe emit kind=wrk target="$1" workers="$2" round="$3" text=@@"$work/w.txt" >>"$raw"
}
measure_fixed() {
  local pid=${PID[$1]} c0 c1
  c0=$(probe cpu "$pid")
  load "$work/f.json" --url "$(url "$1")" --rate "$RATE" --duration "$DUR" --connections 32
  c1=$(probe cpu "$pid")
  probe emit kind=fixed target="$1" workers="$2" round="$3" cpu0="$c0" cpu1="$c1" report=@"$work/f.json" >>"$raw"
}
measure_memory() { # TARGET WORKERS
  local pid=${PID[$1]} rss0 rss1 hp i
  rss0=$(probe rss "$pid")
  timeout 150 python3 "$bench/hold.py" 127.0.0.1 "${PORT[$1]}" "${PATH_OF[$1]}" "$IDLE" 2 >"$work/hold.txt" 2>>"$work/hold.err" & hp=$!; pids+=($hp)
  for i in $(seq 1200); do grep -q '^ready' "$work/hold.txt" && break; kill -0 "$hp" 2>/dev/null || break; sleep 0.1; done
  sleep 1
  rss1=$(probe rss "$pid")
  wait "$hp" || log "hold.py failed on $1"
  forget "$hp"
  sed -n 's/^ready //p' "$work/hold.txt" >"$work/ready.json"
  sed -n 's/^done //p' "$work/hold.txt" >"$work/done.json"
  probe emit kind=memory target="$1" workers="$2" idle="$IDLE" rss0_kib="$rss0" rss1_kib="$rss1" \
    ready=@"$work/ready.json" done=@"$work/done.json" >>"$raw"
  sleep 1 # let the proxy see the closes before the next measurement
}

probe emit kind=meta nproc="$(nproc)" cpu="$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)" \
  mem_kib="$(sed -n 's/^MemTotal: *\([0-9]*\).*/\1/p' /proc/meminfo)" kernel="$(uname -r)" \
  nginx="$(nginx -v 2>&1 | sed 's/.*\///')" haproxy="$(haproxy -v | head -1 | awk '{print $3}')" \
  wrk="$(wrk -v 2>&1 | head -1 | awk '{print $2}')" git="$(git rev-parse --short HEAD)$(git diff --quiet || echo -dirty)" \
  date="$(date -u +%FT%TZ)" loadavg_start="$(cut -d' ' -f1-3 /proc/loadavg)" \
  duration="$DUR" rounds="$ROUNDS" rate="$RATE" idle="$IDLE" quick="$QUICK" >>"$raw"

"$BIN/serin-load" upstream --name v1 --listen 127.0.0.1:$P_V1 >"$work/v1.log" 2>&1 & pids+=($!); PID[direct]=$!
"$BIN/serin-load" upstream --name v2 --listen 127.0.0.1:$P_V2 >"$work/v2.log" 2>&1 & pids+=($!)
wait_port $P_V1; wait_port $P_V2

for workers in $WORKERS; do
  log "== $workers worker(s): starting serin, serin (telemetry off), nginx, HAProxy"
  "$BIN/serin" run --config "$work/serin.toml" --workers "$workers" >"$work/serin-$workers.log" 2>&1 & pids+=($!); PID[serin]=$!; PID[serin-safe]=$!
  SERIN_TELEMETRY=off "$BIN/serin" run --config "$work/serin-notel.toml" --workers "$workers" >"$work/serin-notel-$workers.log" 2>&1 & pids+=($!); PID[serin-notel]=$!
  nginx_conf "$workers" $P_NGINX
  nginx -p "$work/nginx" -e "$work/nginx-error.log" -c "$work/nginx.conf" & pids+=($!); PID[nginx]=$!
  haproxy_conf "$workers"
  haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy-$workers.log" 2>&1 & pids+=($!); PID[haproxy]=$!
  for p in $P_SERIN $P_NOTEL $P_NGINX $P_HAPROXY; do wait_port "$p"; done

  # Warm-up, and proof that every target answers and splits 90/10.
  for target in $ALL; do
    load "$work/s.json" --url "$(url "$target")" --rate 0 --duration 2s --connections 64
    probe emit kind=warmup target="$target" workers="$workers" report=@"$work/s.json" >>"$raw"
  done
  log "warm-up done; split: $(python3 "$bench/summarize.py" --split "$raw" "$workers")"

  for target in $MAIN; do
    measure_memory "$target" "$workers"
    log "memory $target: $(tail -n1 "$raw" | cut -c1-200)"
  done

  for round in $(seq "$ROUNDS"); do
    for target in $ALL; do
      measure_max "$target" "$workers" "$round"
      case " $MAIN " in *" $target "*) measure_wrk "$target" "$workers" "$round" ;; esac
      measure_fixed "$target" "$workers" "$round"
      log "workers=$workers round=$round $target done"
    done
  done
  for t in serin serin-notel nginx haproxy; do stop_pid "${PID[$t]}"; forget "${PID[$t]}"; done
done

probe emit kind=meta_end loadavg_end="$(cut -d' ' -f1-3 /proc/loadavg)" elapsed_s=$(( $(date +%s) - started )) >>"$raw"
cp "$raw" "$bench/raw.jsonl"
python3 "$bench/summarize.py" "$bench/raw.jsonl" --out "$bench"
log "done: $bench/results.md, $bench/latency.svg"
