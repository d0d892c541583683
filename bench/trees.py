#!/usr/bin/env python3
"""Process-tree figures (run by hand; see bench/README.md).

    python3 bench/trees.py [--workers 1000] [--children 3] [--runs 20]
                           [--stop-workers 100] [--stop-children 10] [--stop-runs 5]

1. `cowctl tree --json` latency with W workers of `forker family C` running (W*(C+1) processes):
   median and p90 of --runs calls (wall time of the cowctl process, JSON included).
2. Stop of a pool of S workers with K descendants each, all exiting on TERM: wall time of
   `cowctl stop POOL` (which returns once every worker's cgroup is empty), and the time until
   /proc shows none of the pool's processes, for kill_mode cgroup and group.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "build", "release", "bin")
# The cowherd and cowctl to measure (COWHERD_BENCH_BIN, e.g. an older build's bin directory);
# the helpers and the floor always come from this build.
DAEMON_BIN = os.environ.get("COWHERD_BENCH_BIN", BIN)


def ctl(sock, *args, check=True):
    r = subprocess.run([f"{DAEMON_BIN}/cowctl", "--socket", sock, *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"cowctl {args}: {r.stderr}")
    return r


def descendants(root):
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                s = f.read()
        except OSError:
            continue
        ppid = int(s[s.rfind(b")") + 2 :].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    out, todo = set(), [root]
    while todo:
        for c in kids.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


class Daemon:
    def __init__(self, pools_yaml):
        self.dir = tempfile.mkdtemp(prefix="cowbench-trees-")
        self.sock = f"{self.dir}/s.sock"
        with open(f"{self.dir}/c.yaml", "w") as f:
            f.write(f"daemon:\n  socket: {self.sock}\n  log_level: warn\npools:\n{pools_yaml}")
        self.p = subprocess.Popen([f"{DAEMON_BIN}/cowherd", "-c", f"{self.dir}/c.yaml"],
                                  stdout=subprocess.DEVNULL, stderr=open(f"{self.dir}/log", "w"))
        deadline = time.monotonic() + 30
        while ctl(self.sock, "version", check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError("daemon did not start")
            time.sleep(0.01)

    def wait_processes(self, n, timeout=120):
        deadline = time.monotonic() + timeout
        while len(descendants(self.p.pid)) < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(descendants(self.p.pid))} of {n} processes")
            time.sleep(0.05)

    def close(self):
        ctl(self.sock, "shutdown", check=False)
        try:
            self.p.wait(60)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def pool(name, workers, children, mode="auto"):
    return (f"  {name}:\n    command: [\"{BIN}/forker\", family, \"{children}\"]\n"
            f"    workers: {workers}\n    start_timeout: 0s\n    kill_mode: {mode}\n")


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def bench_tree(a):
    d = Daemon(pool("fam", a.workers, a.children))
    try:
        total = a.workers * (a.children + 1)
        d.wait_processes(total)
        times = []
        for _ in range(a.runs):
            t0 = time.monotonic()
            r = ctl(d.sock, "tree", "--json")
            times.append((time.monotonic() - t0) * 1000)
        nodes = r.stdout.count('"ppid"')
        print(f"tree: {a.workers} workers x {a.children} children = {total} processes "
              f"({nodes} nodes in the reply): median {statistics.median(times):.1f} ms, "
              f"p90 {pct(times, 90):.1f} ms, min {min(times):.1f} ms over {a.runs} runs")
    finally:
        d.close()


def bench_stop(a, mode):
    stop_times, gone_times = [], []
    for _ in range(a.stop_runs):
        d = Daemon(pool("big", a.stop_workers, a.stop_children, mode))
        try:
            total = a.stop_workers * (a.stop_children + 1)
            d.wait_processes(total)
            t0 = time.monotonic()
            ctl(d.sock, "stop", "big")
            stop_times.append(time.monotonic() - t0)
            while descendants(d.p.pid):
                time.sleep(0.001)
            gone_times.append(time.monotonic() - t0)
        finally:
            d.close()
    print(f"stop ({mode}): {a.stop_workers} workers x {a.stop_children} descendants = "
          f"{a.stop_workers * (a.stop_children + 1)} processes: `cowctl stop` median "
          f"{statistics.median(stop_times):.3f} s, last process gone median "
          f"{statistics.median(gone_times):.3f} s (max {max(gone_times):.3f} s, {a.stop_runs} runs)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=1000)
    ap.add_argument("--children", type=int, default=3)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--stop-workers", type=int, default=100)
    ap.add_argument("--stop-children", type=int, default=10)
    ap.add_argument("--stop-runs", type=int, default=5)
    a = ap.parse_args()
    bench_tree(a)
    for mode in ("cgroup", "group"):
        bench_stop(a, mode)


if __name__ == "__main__":
    sys.exit(main())
