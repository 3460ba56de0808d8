# bench/http_aiohttp.py -- CPython asyncio with aiohttp doing what
# bench/http.lua does: 20 000 GETs of a 1 KiB file at concurrency 50 over one
# ClientSession (or, with `download`, one 100 MB file streamed and dropped),
# against ALOOP_BENCH_HTTP. Prints one RESULT line.
import asyncio
import os
import sys
import time

import aiohttp

BASE = os.environ["ALOOP_BENCH_HTTP"]
TOTAL, CONCURRENCY = 20000, 50


async def download():
    async with aiohttp.ClientSession() as session:
        t0 = time.monotonic()
        async with session.get(BASE + "/bench/100mb.bin") as r:
            n = 0
            async for chunk in r.content.iter_chunked(256 * 1024):
                n += len(chunk)
        dt = time.monotonic() - t0
        assert n == 100 * 1024 * 1024, n
        print("RESULT seconds=%.6f mbps=%.1f" % (dt, n / dt / 1e6))


async def get():
    url = BASE + "/bench/1k.bin"
    left = TOTAL
    total_bytes = 0
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def worker():
            nonlocal left, total_bytes
            while left > 0:
                left -= 1
                async with session.get(url) as r:
                    total_bytes += len(await r.read())

        t0 = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        dt = time.monotonic() - t0
    assert total_bytes == TOTAL * 1024, total_bytes
    print("RESULT seconds=%.6f rps=%.1f requests=%d" % (dt, TOTAL / dt, TOTAL))


asyncio.run(download() if sys.argv[1:] == ["download"] else get())
