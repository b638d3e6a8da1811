#!/usr/bin/env python3
"""Opens N keep-alive connections to HOST:PORT, sends one GET on each (HTTP/1.1, keep-alive,
optional bearer token), reads the answer, and then holds every connection open, idle.

Prints `ready <connections> <status counts as JSON>` on stdout once all are open and answered,
then waits until killed (SIGTERM/SIGINT) or --hold seconds pass. At most --parallel
connections are being opened at once, so the gateway is not handed a 2,000-connection SYN burst.

usage: hold_conns.py HOST PORT PATH [--n 2000] [--token T] [--parallel 200] [--hold 120]
"""

import argparse
import asyncio
import json
import resource
import signal
import sys


async def one(host, port, request, sem, statuses, writers):
    async with sem:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(request)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = lines[0].split(" ")[1]
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        if length:
            await reader.readexactly(length)
        statuses[status] = statuses.get(status, 0) + 1
        writers.append((reader, writer))


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("path")
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--token")
    p.add_argument("--parallel", type=int, default=200)
    p.add_argument("--hold", type=float, default=120)
    a = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.n + 256
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    request = f"GET {a.path} HTTP/1.1\r\nHost: {a.host}:{a.port}\r\nConnection: keep-alive\r\n"
    if a.token:
        request += f"Authorization: Bearer {a.token}\r\n"
    request = (request + "\r\n").encode()
    sem = asyncio.Semaphore(a.parallel)
    statuses, writers = {}, []
    results = await asyncio.gather(
        *(one(a.host, a.port, request, sem, statuses, writers) for _ in range(a.n)), return_exceptions=True
    )
    failed = [r for r in results if isinstance(r, Exception)]
    if failed:
        statuses["error:" + type(failed[0]).__name__] = len(failed)
    print(f"ready {len(writers)} {json.dumps(statuses, sort_keys=True)}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), a.hold)
    except asyncio.TimeoutError:
        pass
    closed = sum(1 for r, _ in writers if r.at_eof())
    for _, w in writers:
        w.close()
    print(f"done {len(writers)} held, {closed} closed by the server meanwhile", file=sys.stderr, flush=True)


if __name__ == "__main__":
    asyncio.run(main())
