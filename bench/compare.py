#!/usr/bin/env python3
# Compares the aloop benchmarks of this tree against a build of another
# revision, side by side in one run (alternating, medians), so a change to
# the scheduler is judged against what came before on the same machine.
# Usage: python3 bench/compare.py [--rev REV] [--runs N] [BENCH...]
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
LUA = os.environ.get("ALOOP_BENCH_LUA", "lua5.4")
# benchmark -> the key compared (smaller is better for all of them)
KEYS = {"spawn": "seconds", "pingpong": "seconds", "timers": "mean_late_ms",
        "memory": "bytes_per_task", "queue": "seconds", "semaphore": "seconds"}


def build(rev, where):
    subprocess.run(["git", "-C", ROOT, "worktree", "add", "-q", "--detach", where, rev],
                   check=True)
    subprocess.run(["make", "-C", where, "-s", "build/aloop.so"], check=True,
                   stdout=subprocess.DEVNULL)
    return os.path.join(where, "build")


def run(build_dir, bench):
    env = dict(os.environ, LUA_CPATH=build_dir + "/?.so;;")
    out = subprocess.run([LUA, os.path.join(BENCH, bench + ".lua")], env=env,
                         capture_output=True, text=True, timeout=600).stdout
    m = re.search(r"RESULT (.*)", out)
    if not m:
        return None
    return dict(kv.split("=") for kv in m.group(1).split())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rev", default="HEAD~1")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("benches", nargs="*", default=list(KEYS))
    a = ap.parse_args()
    rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", a.rev],
                         capture_output=True, text=True, check=True).stdout.strip()
    tmp = tempfile.mkdtemp(prefix="aloop-compare-")
    where = os.path.join(tmp, "tree")
    try:
        old = build(rev, where)
        new = os.path.join(ROOT, "build")
        print("%-10s %14s %14s %8s" % ("benchmark", "this tree", rev, "new/old"))
        for bench in a.benches:
            key = KEYS[bench]
            vals = {"new": [], "old": []}
            for _ in range(a.runs):
                for side, d in (("new", new), ("old", old)):
                    r = run(d, bench)
                    if r:
                        vals[side].append(float(r[key]))
            mn, mo = statistics.median(vals["new"]), statistics.median(vals["old"])
            print("%-10s %14.4f %14.4f %8.3f   (%s, median of %d)"
                  % (bench, mn, mo, mn / mo, key, a.runs))
            sys.stdout.flush()
    finally:
        subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", where])
        os.rmdir(tmp)


if __name__ == "__main__":
    main()
