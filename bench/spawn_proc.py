# subprocess spawn rate, asyncio side: run 1 000 `true` processes, 50 at a
# time (a Semaphore(50)), each with create_subprocess_exec and wait().
# Prints the time from the first spawn to the last exit.
import asyncio
import sys
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
AT_ONCE = int(sys.argv[2]) if len(sys.argv) > 2 else 50


async def main():
    sem = asyncio.Semaphore(AT_ONCE)

    async def one():
        async with sem:
            p = await asyncio.create_subprocess_exec("true")
            rc = await p.wait()
        assert rc == 0

    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(N)))
    elapsed = time.perf_counter() - t0
    print(f"RESULT seconds={elapsed:.6f} procs={N} rate={N / elapsed:.1f}")


asyncio.run(main())
