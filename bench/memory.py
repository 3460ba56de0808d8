# memory, asyncio side: 100 000 tasks parked in sleep(10), measured per task
# as the tracemalloc delta (in a child run, since tracemalloc inflates RSS) and
# as the process RSS delta (this run, without tracemalloc); then all cancelled.
import asyncio
import gc
import os
import subprocess
import sys

N = 100_000
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def heap_bytes(traced):
    gc.collect()
    if traced:
        import tracemalloc
        return tracemalloc.get_traced_memory()[0]
    return rss_bytes()


async def main(traced):
    started = 0

    async def sleeper():
        nonlocal started
        started += 1
        await asyncio.sleep(10)

    tasks = [None] * N  # the list itself is not part of a task's cost
    before = heap_bytes(traced)
    for i in range(N):
        tasks[i] = asyncio.create_task(sleeper())
    await asyncio.sleep(0.05)  # every task has run its first step and is parked
    assert started == N, f"only {started} of {N} tasks started"
    after = heap_bytes(traced)
    if traced:
        import tracemalloc
        tracemalloc.stop()  # measured; the teardown need not pay for tracing
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert all(t.cancelled() for t in tasks)
    return (after - before) / N


def run(traced):
    if traced:
        import tracemalloc
        tracemalloc.start()
    return asyncio.run(main(traced))


if __name__ == "__main__":
    if sys.argv[1:] == ["--tracemalloc"]:
        print(f"{run(True):.1f}")
        sys.exit(0)
    child = subprocess.run([sys.executable, __file__, "--tracemalloc"],
                           check=True, capture_output=True, text=True)
    traced_per_task = float(child.stdout.strip().splitlines()[-1])
    rss_per_task = run(False)
    print(f"RESULT bytes_per_task={traced_per_task:.1f} "
          f"rss_bytes_per_task={rss_per_task:.1f} tasks={N}")
