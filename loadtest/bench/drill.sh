#!/usr/bin/env bash
# Time to safety: how long a failing canary keeps users after its fault
# begins. Issue 16's drill: `window = "1s"`, `error_rate > 10%` critical
# with `on_critical = "immediate"`, the canary at 50% of 200 req/s behind
# a v2 → v1 chain, a drill injecting 100% errors into v2. Each run starts
# a fresh serin; the drill report gives detection (fault → first breach),
# decision (breach → rollback) and rollback (decision → canary at 0).
#
#   loadtest/bench/drill.sh [--serin BIN] [--confirm "1s 2s"] [--runs 5] [--no-build]
#
# Prints a Markdown table per confirm and the medians. Loopback only;
# bounded in time; only processes it started are stopped.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bench=$root/loadtest/bench
SERIN="" CONFIRMS="1s 2s" RUNS=5 BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --serin) SERIN=$2; shift ;;
    --confirm) CONFIRMS=$2; shift ;;
    --runs) RUNS=$2; shift ;;
    --no-build) BUILD=0 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "drill.sh: unknown argument $1" >&2; exit 2 ;;
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
SERIN=${SERIN:-$BIN/serin}
work=$(mktemp -d /tmp/serin-drill.XXXXXX)
start_cleanup
P_V1=19601 P_V2=19602 P_SERIN=19680 P_ADMIN=19690
for p in $P_V1 $P_V2 $P_SERIN $P_ADMIN; do
  port_open "$p" && { echo "drill.sh: 127.0.0.1:$p is already in use" >&2; exit 1; }
done
"$BIN/serin-load" upstream --name v1 --listen 127.0.0.1:$P_V1 >"$work/v1.log" 2>&1 & pids+=($!)
"$BIN/serin-load" upstream --name v2 --listen 127.0.0.1:$P_V2 >"$work/v2.log" 2>&1 & pids+=($!)
wait_port $P_V1; wait_port $P_V2
export SERIN_ADMIN_TOKEN=drill-token

one() { # CONFIRM RUN -> appends a JSON line to $work/runs.jsonl
  local confirm=$1 run=$2 dir="$work/state-$1-$2" sp
  cat >"$work/serin.toml" <<TOML
[listen]
http = "127.0.0.1:$P_SERIN"
[admin]
addr = "127.0.0.1:$P_ADMIN"
[state]
dir = "$dir"
[[routes]]
name = "svc"
  [[routes.versions]]
  name = "v1"
  url = "http://127.0.0.1:$P_V1"
  weight = 50
  [[routes.versions]]
  name = "v2"
  url = "http://127.0.0.1:$P_V2"
  weight = 50
  [routes.fallback]
  chain = ["v2", "v1"]
  on = ["5xx", "connect", "timeout"]
  [routes.rollback]
  stable = "v1"
  window = "1s"
  confirm = "$confirm"
  min_requests = 20
  critical = ["error_rate > 10%"]
  on_critical = "immediate"
TOML
  SERIN_LOG=warn "$SERIN" run --config "$work/serin.toml" >"$work/serin-$confirm-$run.log" 2>&1 & sp=$!; pids+=($sp)
  wait_port $P_SERIN; wait_port $P_ADMIN
  # Two seconds of clean traffic first, so the windows are full.
  timeout 10 "$BIN/serin-load" --url "http://127.0.0.1:$P_SERIN/" --rate 200 --duration 2s \
    --connections 8 --json >/dev/null
  timeout 60 "$BIN/serin-load" drill --scenario inject_errors --rate 1.0 \
    --admin "http://127.0.0.1:$P_ADMIN" --route svc --version v2 --duration 10s \
    --traffic "http://127.0.0.1:$P_SERIN/" --traffic-rate 200 --json >"$work/d.json" \
    || log "drill failed (confirm $confirm, run $run)"
  python3 - "$work/d.json" "$confirm" "$run" >>"$work/runs.jsonl" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
r = d.get("drill", d)
print(json.dumps({"confirm": sys.argv[2], "run": int(sys.argv[3]),
                  "detection_s": r.get("detection_s"), "decision_s": r.get("decision_s"),
                  "rollback_s": r.get("rollback_s"), "total_s": r.get("total_s"),
                  "client_errors": r.get("client_errors")}))
PY
  stop_pid "$sp"; forget "$sp"
}

for c in $CONFIRMS; do
  for r in $(seq "$RUNS"); do
    one "$c" "$r"
    log "confirm $c run $r: $(tail -1 "$work/runs.jsonl")"
  done
done
python3 - "$work/runs.jsonl" "$SERIN" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
print(f"serin: `{sys.argv[2]}`\n")
print("| confirm | runs | detection (fault → breach) | decision (breach → action) | rollback (action → 0) | fault → canary at 0 | client errors |")
print("|---|---|---|---|---|---|---|")
for c in dict.fromkeys(r["confirm"] for r in runs):
    rs = [r for r in runs if r["confirm"] == c]
    def med(k):
        v = [r[k] for r in rs if r[k] is not None]
        return f"{statistics.median(v):.2f} s (max {max(v):.2f})" if v else "—"
    errs = sum(r["client_errors"] or 0 for r in rs)
    print(f"| {c} | {len(rs)} | {med('detection_s')} | {med('decision_s')} | {med('rollback_s')} | {med('total_s')} | {errs} |")
PY
