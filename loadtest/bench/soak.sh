#!/usr/bin/env bash
# The soak: serin under 80% of its own maximum request rate for 10 minutes,
# on a 90/10 route with a fallback chain, a breaker, a rollback section and
# telemetry on, while the routing file is rewritten (a real change, so a
# real reload) every 5 s and the canary is rolled back every minute (and
# given its 10% back 30 s later). Records every request's outcome, serin's
# RSS every 10 s, the reloads and rollbacks serin counted.
#
#   loadtest/bench/soak.sh [--minutes 10] [--rate N] [--workers 1] [--quiet] [--nginx]
#                          [--only reloads|rollbacks] [--no-build]
#
# --only keeps one kind of change (reloads every 5 s, or a rollback every
# minute), to tell their costs apart.
# --quiet sends the same load with no reload and no rollback: the baseline
# the changes' cost is read against. --nginx soaks nginx instead (the same
# 90/10 proxy as bench.sh's, at 80% of its own maximum; implies --quiet),
# to tell the machine's own latency under open-loop load from serin's.
# --rate 0 (the default) measures the maximum first (closed loop, 64
# connections, 5 s) and soaks at 80% of it. Writes loadtest/bench/soak.md.
# Loopback only; bounded in time; only processes it started are stopped.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bench=$root/loadtest/bench
MIN=10 RATE=0 WORKERS=1 BUILD=1 QUIET=0 NGINX=0 ONLY=
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) MIN=$2; shift ;;
    --rate) RATE=$2; shift ;;
    --workers) WORKERS=$2; shift ;;
    --no-build) BUILD=0 ;;
    --quiet) QUIET=1 ;;
    --nginx) NGINX=1; QUIET=1 ;;
    --only) ONLY=$2; shift ;;
    *) echo "soak.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
started=$(date +%s)
log() { printf '[%4ss] %s\n' $(( $(date +%s) - started )) "$*" >&2; }
IDLE=0
source "$bench/lib.sh"
need curl curl
if [ "$BUILD" = 1 ]; then
  log "cargo build --release --bin serin --bin serin-load"
  timeout 1800 cargo build --release --bin serin --bin serin-load
fi
BIN=$root/target/release
work=$(mktemp -d /tmp/serin-soak.XXXXXX)
start_cleanup
max_run=$(( MIN * 60 + 300 ))
(
  trap 'kill "$sp" 2>/dev/null; wait "$sp"; exit 0' TERM
  sleep "$max_run" & sp=$!
  wait "$sp" && { echo "soak.sh: over ${max_run}s, giving up" >&2; kill -TERM $$; }
) & pids+=($!)

P_V1=19401 P_V2=19402 P_SERIN=19480 P_ADMIN=19490
for p in $P_V1 $P_V2 $P_SERIN $P_ADMIN; do
  port_open "$p" && { echo "soak.sh: 127.0.0.1:$p is already in use" >&2; exit 1; }
done
ADMIN=http://127.0.0.1:$P_ADMIN

soak_toml() { # CANARY_TIMEOUT: the value the reloads flip
  cat >"$work/serin.toml.new" <<TOML
[listen]
http = "127.0.0.1:$P_SERIN"
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
  timeout = "10s"
  [[routes.versions]]
  name = "v2"
  url = "http://127.0.0.1:$P_V2"
  weight = 10
  timeout = "$1"
  [routes.fallback]
  chain = ["v2", "v1"]
  [routes.breaker]
  error_rate = "50%"
  min_requests = 20
  window = "10s"
  open_for = "30s"
  [routes.rollback]
  stable = "v1"
  window = "30s"
  critical = ["error_rate > 50%"]
TOML
  mv "$work/serin.toml.new" "$work/serin.toml"
}

"$BIN/serin-load" upstream --name v1 --listen 127.0.0.1:$P_V1 >"$work/v1.log" 2>&1 & pids+=($!)
"$BIN/serin-load" upstream --name v2 --listen 127.0.0.1:$P_V2 >"$work/v2.log" 2>&1 & pids+=($!)
if [ "$NGINX" = 1 ]; then
  need nginx nginx
  nginx_conf "$WORKERS" $P_SERIN
  nginx -p "$work/nginx" -e "$work/nginx-error.log" -c "$work/nginx.conf" & sp=$!; pids+=($sp)
else
  soak_toml 3s
  SERIN_LOG=warn "$BIN/serin" run --config "$work/serin.toml" --workers "$WORKERS" >"$work/serin.log" 2>&1 & sp=$!; pids+=($sp)
fi
wait_port $P_V1; wait_port $P_V2; wait_port $P_SERIN
# The proxy's RSS, its worker processes included (nginx's master and workers).
rss() {
  local sum=0 p
  for p in $sp $(pgrep -P "$sp" 2>/dev/null); do
    sum=$(( sum + $(awk '/VmRSS/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0) ))
  done
  echo "$sum"
}

if [ "$RATE" = 0 ]; then
  max=$(timeout 60 "$BIN/serin-load" --url "http://127.0.0.1:$P_SERIN/" --rate 0 --connections 64 --duration 5s --json |
    python3 -c 'import json,sys; print(int(json.load(sys.stdin)["throughput_rps"]))')
  RATE=$(( max * 8 / 10 ))
  log "max ${max} req/s: soaking at ${RATE} req/s"
fi

rss0=$(rss)
timeout $(( MIN * 60 + 120 )) "$BIN/serin-load" --url "http://127.0.0.1:$P_SERIN/" --rate "$RATE" \
  --connections 64 --duration "${MIN}m" --json >"$work/soak.json" 2>"$work/load.err" & lp=$!; pids+=($lp)
echo -e "second\trss_kib" >"$work/rss.tsv"
flip=0 rollbacks=0 t=0
while kill -0 "$lp" 2>/dev/null; do
  sleep 5; t=$(( t + 5 ))
  if [ "$QUIET" = 1 ]; then
    [ $(( t % 10 )) = 0 ] && echo -e "$t\t$(rss)" >>"$work/rss.tsv"
    continue
  fi
  # A real change every 5 s: the canary's timeout flips between 3s and 4s.
  if [ "$ONLY" != rollbacks ]; then
    flip=$(( 1 - flip )); soak_toml "$(( 3 + flip ))s"
  fi
  if [ "$ONLY" = reloads ]; then
    :
  elif [ $(( t % 60 )) = 0 ]; then
    "$BIN/serin" rollback svc --admin "$ADMIN" --reason soak >/dev/null && rollbacks=$(( rollbacks + 1 ))
  elif [ $(( t % 60 )) = 30 ]; then
    "$BIN/serin" weights svc v1=90 v2=10 --admin "$ADMIN" --reason soak >/dev/null
  fi
  [ $(( t % 10 )) = 0 ] && echo -e "$t\t$(rss)" >>"$work/rss.tsv"
done
wait "$lp"; forget "$lp"
rss1=$(rss)
metrics=$(curl -s "$ADMIN/metrics" || true)
reloads_ok=$(echo "$metrics" | awk '/^serin_config_reloads_total\{result="applied"\}/{print $2}')
reloads_bad=$(echo "$metrics" | awk '/^serin_config_reloads_total\{result="rejected"\}/{print $2}')
rolled=$(echo "$metrics" | awk '/^serin_rollbacks_total/{s+=$2} END{print s+0}')

WHO=serin
SHAPE="a 90/10 route with a fallback chain, a breaker, a rollback section and telemetry on"
CHANGES="the routing file rewritten every 5 s (the canary's timeout flips), a rollback every minute and the canary's 10% given back 30 s after each"
[ "$QUIET" = 1 ] && CHANGES="no reload and no rollback (--quiet)"
[ "$ONLY" = reloads ] && CHANGES="the routing file rewritten every 5 s, no rollback (--only reloads)"
[ "$ONLY" = rollbacks ] && CHANGES="a rollback every minute and the canary's 10% given back 30 s after each, no reload (--only rollbacks)"
[ "$NGINX" = 1 ] && SHAPE="the same 90/10 split as bench.sh's, upstream keep-alive (nginx has no chain, breaker or rollback)"
[ "$NGINX" = 1 ] && WHO="nginx $(nginx -v 2>&1 | sed 's|.*/||')"
out=$bench/soak.md
[ "$QUIET" = 1 ] && out=$bench/soak-quiet.md
[ "$NGINX" = 1 ] && out=$bench/soak-nginx.md
[ -n "$ONLY" ] && out=$bench/soak-$ONLY.md
python3 - "$work/soak.json" "$work/rss.tsv" "$out" <<PY
import json, sys
r = json.load(open(sys.argv[1]))
rows = [l.split("\t") for l in open(sys.argv[2]).read().split("\n")[1:] if l]
rss = [int(k) for _, k in rows]
with open(sys.argv[3], "w") as out:
    out.write(f"""# Soak: {r['requests']} requests over $MIN minutes

Generated by \`loadtest/bench/soak.sh --minutes $MIN --workers $WORKERS$([ "$NGINX" = 1 ] && echo " --nginx" || { [ "$QUIET" = 1 ] && echo " --quiet"; })\` (commit $(git -C "$root" rev-parse --short HEAD)).
$WHO with $WORKERS worker(s): $SHAPE; at $RATE req/s open loop (80% of the
maximum measured just before unless \`--rate\` was given), 64 connections; $CHANGES.

| figure | value |
|---|---|
| requests sent | {r['requests']} |
| answered 2xx | {r['ok']} |
| failed (non-2xx, transport, timeouts) | {r['errors']} |
| throughput | {r['throughput_rps']:.0f} req/s |
| p50 / p99 / p99.9 | {r['p50_ms']:.2f} / {r['p99_ms']:.2f} / {r['p999_ms']:.2f} ms |
| reloads applied / refused | ${reloads_ok:-0} / ${reloads_bad:-0} |
| rollbacks sent / counted by serin | $rollbacks / $rolled |
| RSS before load, after | $rss0 KiB, $rss1 KiB |
| RSS every 10 s: first, max, last | {rss[0] if rss else 0}, {max(rss) if rss else 0}, {rss[-1] if rss else 0} KiB |

RSS each minute (KiB): {", ".join(f"{int(t)//60}m {k}" for t, k in rows if int(t) % 60 == 0)}
""")
print(open(sys.argv[3]).read())
PY
