"""Turns bench.sh's raw JSON lines into a Markdown table of medians and ratios."""
import json, statistics, sys, platform, os, subprocess

raw, rate, dur, rounds = sys.argv[1:5]
rows = [json.loads(l) for l in open(raw) if l.strip()]

def med(target, workers, key):
    vals = [r[key] for r in rows if r["target"] == target and r["workers"] == workers and r[key] is not None]
    return statistics.median(vals) if vals else float("nan")

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"Machine: {os.cpu_count()} cores, {cpu}; loopback; median of {rounds} interleaved round(s), {dur} each.\n")
print(f"| workers | target | serin-load max rps (64 conns) | wrk rps (64 conns) | p50 @ {rate}/s (ms) | p99 @ {rate}/s (ms) | wrk p99 (ms) | errors |")
print("|---|---|---|---|---|---|---|---|")
for w in (1, 2):
    for t in ("direct", "serin", "nginx"):
        errs = sum(r["load_max_errors"] + r["fixed_errors"] for r in rows if r["target"] == t and r["workers"] == w)
        print(f"| {w} | {t} | {med(t, w, 'load_max_rps'):.0f} | {med(t, w, 'wrk_rps'):.0f} | "
              f"{med(t, w, 'fixed_p50_ms'):.3f} | {med(t, w, 'fixed_p99_ms'):.3f} | {med(t, w, 'wrk_p99_ms'):.3f} | {errs} |")
print("\nRatios (serin / nginx throughput; added p99 = serin p99 - direct p99 at the fixed rate):\n")
print("| workers | serin/nginx (serin-load) | serin/nginx (wrk) | serin/direct (serin-load) | added p99 serin (µs) | added p99 nginx (µs) |")
print("|---|---|---|---|---|---|")
for w in (1, 2):
    s, n, d = (med(t, w, "load_max_rps") for t in ("serin", "nginx", "direct"))
    sw, nw = med("serin", w, "wrk_rps"), med("nginx", w, "wrk_rps")
    ap_s = (med("serin", w, "fixed_p99_ms") - med("direct", w, "fixed_p99_ms")) * 1000
    ap_n = (med("nginx", w, "fixed_p99_ms") - med("direct", w, "fixed_p99_ms")) * 1000
    print(f"| {w} | {s / n:.2f} | {sw / nw:.2f} | {s / d:.2f} | {ap_s:.0f} | {ap_n:.0f} |")
