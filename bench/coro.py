# Reference for the memory benchmark: the size of a bare Python coroutine,
# started once and parked on a bare awaitable, 100 000 of them, measured as
# the RSS delta and then (a second batch, under tracemalloc) the traced delta.
import gc
import os
import sys

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
PAGE = os.sysconf("SC_PAGE_SIZE")


class Park:
    def __await__(self):
        yield


async def body():
    await Park()


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def batch(measure):
    cos = [None] * N
    gc.collect()
    before = measure()
    for i in range(N):
        co = body()
        co.send(None)
        cos[i] = co
    gc.collect()
    after = measure()
    for co in cos:
        co.close()
    return (after - before) / N


rss_per = batch(rss_bytes)
import tracemalloc  # noqa: E402  (started only after the RSS batch)
tracemalloc.start()
traced_per = batch(lambda: tracemalloc.get_traced_memory()[0])
print(f"RESULT bytes_per_task={traced_per:.1f} rss_bytes_per_task={rss_per:.1f} tasks={N}")
