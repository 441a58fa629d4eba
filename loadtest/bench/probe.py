"""bench.sh's small helpers, so the shell script stays about order and time.

    python3 probe.py cpu PID             utime+stime in seconds of PID and its children
    python3 probe.py rss PID             VmRSS in KiB of PID and its children
    python3 probe.py emit KEY=VALUE ...  one JSON line on stdout; VALUE `@FILE` embeds
                                         FILE's JSON, `@@FILE` its raw text; digits become numbers

"Children" are the processes whose parent is PID (nginx's workers under its
master); serin, HAProxy and the fake upstreams are one process each, and
/proc/PID/stat already sums every thread of a process.
"""
import json
import os
import sys

TICK = os.sysconf("SC_CLK_TCK")


def family(pid):
    pids = [pid]
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may hold spaces: fields count from the last ')'.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            pids.append(int(entry))
    return pids


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state): utime is field 14, stime field 15.
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def value(text):
    if text.startswith("@@"):
        with open(text[2:]) as f:
            return f.read()
    if text.startswith("@"):
        try:
            with open(text[1:]) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "cpu":
        print(f"{sum(cpu_seconds(p) for p in family(int(args[0]))):.2f}")
    elif cmd == "rss":
        print(sum(rss_kib(p) for p in family(int(args[0]))))
    elif cmd == "emit":
        print(json.dumps({k: value(v) for k, v in (a.split("=", 1) for a in args)}))
    else:
        sys.exit(f"probe.py: unknown command {cmd}")


if __name__ == "__main__":
    main()
