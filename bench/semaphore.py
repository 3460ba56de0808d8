# semaphore, asyncio side: 100 000 tasks contend for a Semaphore(10); each
# acquires it, sleeps 0 while holding it, and releases it; gather them all.
# Prints the time from before the first spawn to gather returning.
import asyncio
import sys
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
LIMIT = 10

held = max_held = 0


async def worker(sem):
    global held, max_held
    async with sem:
        held += 1
        if held > max_held:
            max_held = held
        await asyncio.sleep(0)
        held -= 1


async def main():
    sem = asyncio.Semaphore(LIMIT)
    t0 = time.perf_counter()
    tasks = [asyncio.create_task(worker(sem)) for _ in range(N)]
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - t0
    if max_held != LIMIT:
        raise RuntimeError(f"semaphore held by {max_held} tasks at most")
    print(f"RESULT seconds={elapsed:.6f} tasks={N}")


asyncio.run(main())
