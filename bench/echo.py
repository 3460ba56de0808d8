# TCP echo, asyncio side: the same work as bench/echo.lua with asyncio streams
# (one server, 100 clients x 2 000 round trips of 64 bytes, one process).
import asyncio
import sys
import time

CLIENTS = int(sys.argv[1]) if len(sys.argv) > 1 else 100
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
SIZE = 64


finished = 0
all_finished = None


async def handle(reader, writer):
    global finished
    while True:
        data = await reader.read(65536)
        if not data:
            break
        writer.write(data)
        await writer.drain()
    writer.close()
    finished += 1
    if finished == CLIENTS:
        all_finished.set()


async def client(reader, writer, msg):
    for _ in range(ROUNDS):
        writer.write(msg)
        assert await reader.readexactly(SIZE) == msg


async def main():
    global all_finished
    all_finished = asyncio.Event()
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(CLIENTS)]
    msg = b"x" * SIZE
    t0 = time.perf_counter()
    await asyncio.gather(*(client(r, w, msg) for r, w in conns))
    elapsed = time.perf_counter() - t0
    for _, w in conns:
        w.close()
    await all_finished.wait()
    server.close()
    await server.wait_closed()
    n = CLIENTS * ROUNDS
    print("RESULT seconds=%.6f round_trips=%d rtps=%.0f" % (elapsed, n, n / elapsed))


asyncio.run(main())
