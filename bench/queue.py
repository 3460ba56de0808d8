# queue ping-pong, asyncio side: two tasks pass an item back and forth through
# two Queues of maxsize 1 (ping: one -> two, pong: two -> one), 1 000 000
# items through the queues in all (500 000 round trips). Every get finds its
# queue empty and waits, so each item is one put, one wake-up, one get.
# Prints the total time.
import asyncio
import sys
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
ROUNDS = N // 2


async def pinger(ping, pong):
    for i in range(1, ROUNDS + 1):
        await ping.put(i)
        v = await pong.get()
        if v != i:
            raise RuntimeError(f"pong returned {v!r}, expected {i}")


async def ponger(ping, pong):
    for _ in range(ROUNDS):
        await pong.put(await ping.get())


async def main():
    ping, pong = asyncio.Queue(1), asyncio.Queue(1)
    t0 = time.perf_counter()
    a = asyncio.create_task(pinger(ping, pong))
    b = asyncio.create_task(ponger(ping, pong))
    await asyncio.gather(a, b)
    elapsed = time.perf_counter() - t0
    print(f"RESULT seconds={elapsed:.6f} items={ROUNDS * 2}")


asyncio.run(main())
