# spawn+gather, asyncio side: spawn 100 000 tasks that each sleep(0) and
# return, then gather them all. Prints the time from before the first spawn
# to gather returning.
import asyncio
import sys
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000


async def worker():
    await asyncio.sleep(0)


async def main():
    t0 = time.perf_counter()
    tasks = [asyncio.create_task(worker()) for _ in range(N)]
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - t0
    print(f"RESULT seconds={elapsed:.6f} tasks={N}")


asyncio.run(main())
