# to_thread, asyncio side: the round-trip latency of one tiny job awaited at a
# time (ROUNDS of them), then the throughput of N tiny jobs started at once
# and gathered (asyncio.to_thread on the default executor). Prints the mean
# round trip and the time for the N jobs.
import sys

# This file's folder comes first on sys.path, and its queue.py would shadow
# the standard queue module that the default executor imports.
del sys.path[0]

import asyncio  # noqa: E402
import time  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 2000


def tiny(x):
    return x + 1


async def main():
    await asyncio.to_thread(tiny, 0)  # the executor's first thread starts here
    t0 = time.perf_counter()
    for i in range(ROUNDS):
        await asyncio.to_thread(tiny, i)
    rt = (time.perf_counter() - t0) / ROUNDS
    t0 = time.perf_counter()
    tasks = [asyncio.create_task(asyncio.to_thread(tiny, i)) for i in range(N)]
    r = await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - t0
    assert r[N - 1] == N
    print(f"RESULT seconds={elapsed:.6f} jobs_per_s={N / elapsed:.0f} "
          f"latency_us={rt * 1e6:.2f} jobs={N}")


asyncio.run(main())
