"""Holds N idle HTTP/1.1 keep-alive connections open against one address.

    python3 hold.py HOST PORT PATH N HOLD_SECONDS

Opens N connections (at most 200 handshakes in flight, so no listen backlog
overflows), sends one GET on each and reads its answer, prints one line
`ready {json}` to stdout, keeps every connection open and idle for
HOLD_SECONDS (bench.sh reads the server's RSS meanwhile), then prints
`done {json}` with how many connections the server had closed by then, and
exits. The caller raises `ulimit -n` first.
"""
import asyncio
import json
import sys
import time

IN_FLIGHT = 200


async def open_one(host, port, path, sem):
    async with sem:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            status = int(head.split(b" ", 2)[1])
            length, chunked = 0, False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding" and b"chunked" in value.lower():
                    chunked = True
            if chunked:
                await asyncio.wait_for(reader.readuntil(b"0\r\n\r\n"), 10)
            elif length:
                await asyncio.wait_for(reader.readexactly(length), 10)
            return (reader, writer, status)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError) as e:
            return e


async def main():
    host, port, path, n, hold = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
    sem = asyncio.Semaphore(IN_FLIGHT)
    t0 = time.monotonic()
    results = await asyncio.gather(*(open_one(host, port, path, sem) for _ in range(n)))
    conns = [r for r in results if isinstance(r, tuple)]
    failures = [r for r in results if not isinstance(r, tuple)]
    ok = sum(1 for c in conns if 200 <= c[2] < 300)
    first_error = repr(failures[0]) if failures else None
    print("ready " + json.dumps({"opened": len(conns), "ok": ok, "failed": len(failures),
                                 "first_error": first_error,
                                 "open_s": round(time.monotonic() - t0, 2)}), flush=True)
    await asyncio.sleep(hold)
    # The transports keep reading in the background: a server that closed
    # an idle connection has fed EOF by now.
    closed = sum(1 for reader, _, _ in conns if reader.at_eof())
    print("done " + json.dumps({"still_open": len(conns) - closed, "closed_by_server": closed}), flush=True)
    for _, writer, _ in conns:
        writer.close()


if __name__ == "__main__":
    asyncio.run(main())
