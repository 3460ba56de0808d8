# timers, asyncio side: 100 000 tasks each sleep a pseudo-random 0-100 ms
# (the same LCG sequence as timers.lua) and record their lateness: time after
# waking - time before sleeping - delay. Prints mean, min and max in ms.
import asyncio
import sys
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
SEED = 12345

stats = {"sum": 0.0, "min": float("inf"), "max": float("-inf")}


def delays(n, seed):
    # 31-bit LCG (glibc's constants), written out the same way in Lua.
    x = seed
    out = []
    for _ in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out.append((x % 100001) / 1e6)  # 0 .. 0.1 s, 1 us steps
    return out


async def worker(delay):
    t0 = time.perf_counter()
    await asyncio.sleep(delay)
    late = time.perf_counter() - t0 - delay
    stats["sum"] += late
    if late < stats["min"]:
        stats["min"] = late
    if late > stats["max"]:
        stats["max"] = late


async def main():
    ds = delays(N, SEED)
    tasks = [asyncio.create_task(worker(d)) for d in ds]
    await asyncio.gather(*tasks)
    print(
        f"RESULT mean_late_ms={stats['sum'] / N * 1e3:.6f} "
        f"min_late_ms={stats['min'] * 1e3:.6f} "
        f"max_late_ms={stats['max'] * 1e3:.6f} "
        f"mean_delay_ms={sum(ds) / N * 1e3:.6f}"
    )


asyncio.run(main())
