# bench/http_floor.py -- the ceilings of the HTTP benchmarks, against the
# nginx bench/run.py started (ALOOP_BENCH_HTTP): `wrk` (one thread, 50
# connections, 3 s) on the 1 KiB file, reported as the time 20 000 requests
# take at its rate; with `download`, the `curl` command fetching the 100 MB
# file to /dev/null. Prints one RESULT line.
import os
import re
import subprocess
import sys
import time

BASE = os.environ["ALOOP_BENCH_HTTP"]

if sys.argv[1:] == ["download"]:
    t0 = time.monotonic()
    subprocess.run(["curl", "-s", "-f", "-o", "/dev/null", BASE + "/bench/100mb.bin"], check=True)
    dt = time.monotonic() - t0
    print("RESULT seconds=%.6f mbps=%.1f" % (dt, 100 * 1024 * 1024 / dt / 1e6))
else:
    out = subprocess.run(["wrk", "-t1", "-c50", "-d3s", BASE + "/bench/1k.bin"],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1))
    print("RESULT seconds=%.6f rps=%.1f requests=20000" % (20000 / rps, rps))
