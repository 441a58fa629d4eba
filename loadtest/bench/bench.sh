#!/usr/bin/env bash
# serin vs a direct connection vs nginx, as the same weighted 90/10 proxy over
# the same fake upstreams, measured interleaved in one run with serin-load and
# wrk, at 1 and 2 proxy worker threads. Loopback only; every step is bounded.
#
#   loadtest/bench/bench.sh [--quick]        (writes loadtest/bench/results.md)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
DUR=${DUR:-10s}
ROUNDS=${ROUNDS:-2}
RATE=${RATE:-2000}
[ "${1:-}" = "--quick" ] && { DUR=3s; ROUNDS=1; }

need() { command -v "$1" >/dev/null 2>&1 || { echo "installing $2"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }; }
need nginx nginx
need wrk wrk

cargo build --release --bin serin --bin serin-load
BIN=$root/target/release
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

P_V1=19101 P_V2=19102 P_SERIN=19180 P_ADMIN=19190 P_NGINX=19181
"$BIN/serin-load" upstream --name v1 --listen 127.0.0.1:$P_V1 >/dev/null & pids+=($!)
"$BIN/serin-load" upstream --name v2 --listen 127.0.0.1:$P_V2 >/dev/null & pids+=($!)

cat >"$work/serin.toml" <<TOML
[listen]
http = "127.0.0.1:$P_SERIN"
[admin]
addr = "127.0.0.1:$P_ADMIN"
[state]
dir = "$work/state"
[[routes]]
name = "bench"
  [[routes.versions]]
  name = "v1"
  url = "http://127.0.0.1:$P_V1"
  weight = 90
  [[routes.versions]]
  name = "v2"
  url = "http://127.0.0.1:$P_V2"
  weight = 10
TOML

nginx_conf() {
  cat >"$work/nginx.conf" <<NGINX
worker_processes $1;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
daemon off;
events { worker_connections 4096; }
http {
  access_log off;
  upstream bench { server 127.0.0.1:$P_V1 weight=9; server 127.0.0.1:$P_V2 weight=1; keepalive 128; }
  server {
    listen 127.0.0.1:$P_NGINX reuseport;
    location / { proxy_pass http://bench; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
NGINX
}

wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 did not open" >&2; exit 1; }
wait_port $P_V1; wait_port $P_V2

declare -A URL=([direct]="http://127.0.0.1:$P_V1/" [serin]="http://127.0.0.1:$P_SERIN/" [nginx]="http://127.0.0.1:$P_NGINX/")
raw="$work/raw.jsonl"
: >"$raw"

for workers in 1 2; do
  "$BIN/serin" run --config "$work/serin.toml" --workers $workers 2>"$work/serin.log" & serin_pid=$!; pids+=($serin_pid)
  nginx_conf $workers
  nginx -c "$work/nginx.conf" 2>>"$work/nginx-error.log" & nginx_pid=$!; pids+=($nginx_pid)
  wait_port $P_SERIN; wait_port $P_NGINX
  for round in $(seq "$ROUNDS"); do
    for target in direct serin nginx; do
      url=${URL[$target]}
      # Warm-up, then max throughput (closed loop, 64 connections).
      "$BIN/serin-load" --url "$url" --rate 0 --duration 1s --connections 64 --json >/dev/null
      max=$("$BIN/serin-load" --url "$url" --rate 0 --duration "$DUR" --connections 64 --json)
      # Latency at a fixed moderate rate (open loop).
      fixed=$("$BIN/serin-load" --url "$url" --rate "$RATE" --duration "$DUR" --connections 32 --json)
      w=$(wrk -t1 -c64 -d"$DUR" --latency "$url")
      python3 - "$target" "$workers" "$round" "$max" "$fixed" "$w" >>"$raw" <<'PY'
import json, re, sys
target, workers, rnd, mx, fixed, w = sys.argv[1:]
mx, fixed = json.loads(mx), json.loads(fixed)
def wrk_ms(label):
    m = re.search(r"^\s*%s\s+([\d.]+)(us|ms|s)\b" % label, w, re.M)
    if not m: return None
    v, u = float(m.group(1)), m.group(2)
    return v / 1000 if u == "us" else v * 1000 if u == "s" else v
rps = re.search(r"Requests/sec:\s+([\d.]+)", w)
print(json.dumps({"target": target, "workers": int(workers), "round": int(rnd),
  "load_max_rps": mx["throughput_rps"], "load_max_errors": mx["errors"],
  "fixed_p50_ms": fixed["p50_ms"], "fixed_p99_ms": fixed["p99_ms"], "fixed_errors": fixed["errors"],
  "wrk_rps": float(rps.group(1)) if rps else None, "wrk_p50_ms": wrk_ms("50%"), "wrk_p99_ms": wrk_ms("99%")}))
PY
      echo "workers=$workers round=$round $target: $(tail -n1 "$raw")"
    done
  done
  kill "$serin_pid" "$nginx_pid"; wait "$serin_pid" "$nginx_pid" 2>/dev/null || true
done

python3 "$root/loadtest/bench/summarize.py" "$raw" "$RATE" "$DUR" "$ROUNDS" | tee "$root/loadtest/bench/results.md"
