#!/usr/bin/env bash
# Two serin binaries side by side: both run at once on the same fake
# upstreams, and closed-loop runs against each are interleaved (the order
# flips every round), so a slow spell of the machine hits both. For "did
# this change make serin faster": build the old commit, copy its binary,
# build the new one, then
#
#   loadtest/bench/ab.sh OLD_SERIN NEW_SERIN [--workers 2] [--rounds 4] [--duration 4s]
#
# Prints requests/s per round and the medians. Loopback only; every process
# it starts is stopped.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bench=$root/loadtest/bench
[ $# -ge 2 ] || { sed -n '2,11p' "$0"; exit 2; }
A=$1 B=$2; shift 2
W=2 R=4 D=4s
while [ $# -gt 0 ]; do
  case "$1" in
    --workers) W=$2; shift ;;
    --rounds) R=$2; shift ;;
    --duration) D=$2; shift ;;
    *) echo "ab.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
source "$bench/lib.sh"
LOAD=$root/target/release/serin-load
[ -x "$LOAD" ] || timeout 1800 cargo build --release --bin serin-load

work=$(mktemp -d /tmp/serin-ab.XXXXXX)
start_cleanup
P_V1=19201 P_V2=19202 IDLE=0
declare -A PORT=([a]=19211 [b]=19212) ADMIN=([a]=19221 [b]=19222) BIN=([a]=$A [b]=$B)
for p in $P_V1 $P_V2 "${PORT[@]}" "${ADMIN[@]}"; do
  port_open "$p" && { echo "ab.sh: 127.0.0.1:$p is already in use" >&2; exit 1; }
done
"$LOAD" upstream --name v1 --listen 127.0.0.1:$P_V1 >/dev/null 2>&1 & pids+=($!)
"$LOAD" upstream --name v2 --listen 127.0.0.1:$P_V2 >/dev/null 2>&1 & pids+=($!)
for t in a b; do
  serin_toml "$work/$t.toml" "${PORT[$t]}" "${ADMIN[$t]}" "$work/state-$t"
  SERIN_LOG=warn "${BIN[$t]}" run --config "$work/$t.toml" --workers "$W" >"$work/$t.log" 2>&1 & pids+=($!)
done
for p in $P_V1 $P_V2 "${PORT[@]}"; do wait_port "$p"; done
rps() { # TARGET
  timeout 60 "$LOAD" --url "http://127.0.0.1:${PORT[$1]}/plain" --rate 0 --duration "$2" \
    --connections 64 --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(round(d["throughput_rps"]), d["errors"])'
}
for t in a b; do rps "$t" 1s >/dev/null; done
declare -A ALL=([a]="" [b]="")
for r in $(seq "$R"); do
  order="a b"; [ $((r % 2)) = 0 ] && order="b a"
  for t in $order; do
    read -r n errors < <(rps "$t" "$D")
    echo "round $r $t ${BIN[$t]}: $n req/s, $errors errors"
    ALL[$t]="${ALL[$t]} $n"
  done
done
median() { python3 -c 'import statistics,sys; print(round(statistics.median(map(int, sys.argv[1:]))))' "$@"; }
ma=$(median ${ALL[a]}) mb=$(median ${ALL[b]})
echo "median: a $ma, b $mb req/s; b ÷ a = $(python3 -c "print(f'{$mb / $ma:.3f}')")"
