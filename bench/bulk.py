# Bulk throughput, asyncio side: the same work as bench/bulk.lua (1 GiB through
# one loopback connection, 256 KiB writes with drain, reads of up to 1 MiB).
import asyncio
import sys
import time

TOTAL = int(sys.argv[1]) if len(sys.argv) > 1 else 1024 * 1024 * 1024
CHUNK = 256 * 1024


async def main():
    received = 0
    done = asyncio.Event()

    async def handle(reader, writer):
        nonlocal received
        while True:
            data = await reader.read(1024 * 1024)
            if not data:
                break
            received += len(data)
        done.set()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    chunk = b"x" * CHUNK
    t0 = time.perf_counter()
    for _ in range(TOTAL // CHUNK):
        writer.write(chunk)
        await writer.drain()
    writer.write_eof()
    await done.wait()
    elapsed = time.perf_counter() - t0
    assert received == TOTAL, received
    writer.close()
    server.close()
    await server.wait_closed()
    print("RESULT seconds=%.6f bytes=%d mbps=%.1f" % (elapsed, TOTAL, TOTAL / elapsed / 1e6))


asyncio.run(main())
