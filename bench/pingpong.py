# ping-pong, asyncio side: two tasks hand a counter back and forth through
# futures, 1 000 000 hand-overs in all (each hand-over is one switch: set the
# other's future, then await a fresh one of our own). Prints the total time.
import asyncio
import sys
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000


async def player(me, other, slots):
    loop = asyncio.get_running_loop()
    while True:
        v = await slots[me]
        if v >= N:
            # The one who receives N tells the other to stop, then both return.
            if v == N:
                slots[other].set_result(v + 1)
            return
        slots[me] = loop.create_future()
        slots[other].set_result(v + 1)


async def main():
    loop = asyncio.get_running_loop()
    slots = [loop.create_future(), loop.create_future()]
    a = asyncio.create_task(player(0, 1, slots))
    b = asyncio.create_task(player(1, 0, slots))
    t0 = time.perf_counter()
    slots[0].set_result(0)
    await asyncio.gather(a, b)
    elapsed = time.perf_counter() - t0
    print(f"RESULT seconds={elapsed:.6f} switches={N}")


asyncio.run(main())
