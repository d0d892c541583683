#!/usr/bin/env python3
"""Memory-report figures (run by hand; see bench/README.md).

    python3 bench/mem.py [--n 1000 3000] [--runs 5] [--no-smem] [--deep-mib 256]

For N workers of `sleep 100000` under one cowherd:
  1. `cowctl mem --json` wall time vs the floor, a bare C loop reading smaps_rollup of the same
     pids (bench_floor_rollup), and vs `smem` (apt install smem) on the same processes;
     median of --runs, reported as ratios to the floor.
  2. Other control replies while `mem` runs: `status` round trips of a single small request
     (pool with one worker), sent back to back on one connection during 20 `mem` calls;
     p50/p99/max.
  3. `cowctl mem --deep` for a pool of 4 processes of --deep-mib MiB each (1 worker that
     forks 3 children, all touching their memory): time and pages per second.
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
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


class Daemon:
    def __init__(self, pools_yaml):
        self.dir = tempfile.mkdtemp(prefix="cowbench-mem-")
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

    def pids(self, pool):
        st = json.loads(ctl(self.sock, "status", pool, "--json").stdout)
        return [w["pid"] for p in st["pools"] for w in p["workers"] if w["pid"]]

    def wait_running(self, pool, n, timeout=120):
        deadline = time.monotonic() + timeout
        while len(self.pids(pool)) < n:
            if time.monotonic() > deadline:
                raise RuntimeError("workers did not start")
            time.sleep(0.05)

    def close(self):
        ctl(self.sock, "shutdown", check=False)
        try:
            self.p.wait(120)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def timed(cmd):
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{cmd}: {r.stderr}")
    return (time.monotonic() - t0) * 1000, r.stdout


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def bench_scale(n, runs, use_smem):
    pools = (f"  big:\n    command: [sleep, \"100000\"]\n    workers: {n}\n    start_timeout: 0s\n"
             f"  one:\n    command: [sleep, \"100000\"]\n    start_timeout: 0s\n")
    d = Daemon(pools)
    try:
        d.wait_running("big", n)
        pids = d.pids("big")
        pidfile = f"{d.dir}/pids"
        with open(pidfile, "w") as f:
            f.write("\n".join(map(str, pids)))
        ctl(d.sock, "mem", "big", "--json")  # warm-up: first samples become baselines
        mem_t, floor_t, smem_t = [], [], []
        for _ in range(runs):
            t, out = timed([f"{DAEMON_BIN}/cowctl", "--socket", d.sock, "mem", "big", "--json"])
            mem_t.append(t)
            floor_t.append(float(subprocess.run([f"{BIN}/bench_floor_rollup", pidfile],
                                                capture_output=True, text=True).stdout))
            if use_smem:
                # smem reads smaps of every process it is told about: filter to our sleeps.
                t, _ = timed(["smem", "-c", "pid pss uss rss", "-P", "^sleep 100000"])
                smem_t.append(t)
        procs = json.loads(out)["processes"]
        fl = statistics.median(floor_t)
        m = statistics.median(mem_t)
        line = (f"N={n}: cowctl mem --json {m:.1f} ms ({procs} processes), floor {fl:.1f} ms, "
                f"ratio {m / fl:.2f}x")
        if smem_t:
            s = statistics.median(smem_t)
            line += f"; smem {s:.1f} ms, {s / fl:.1f}x the floor, {s / m:.1f}x cowctl"
        print(line, flush=True)

        # Other replies while mem runs: a small status request, back to back, on one socket.
        lat, stop = [], threading.Event()

        def pinger():
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(d.sock)
            f = s.makefile("rwb")
            i = 0
            while not stop.is_set():
                i += 1
                t0 = time.monotonic()
                f.write(json.dumps({"v": 1, "id": i, "cmd": "status",
                                    "args": {"target": "one"}}).encode() + b"\n")
                f.flush()
                f.readline()
                lat.append((time.monotonic() - t0) * 1000)
            s.close()

        th = threading.Thread(target=pinger)
        th.start()
        for _ in range(20):
            ctl(d.sock, "mem", "big", "--json")
        stop.set()
        th.join()
        print(f"N={n}: status replies during 20 mem calls: {len(lat)} replies, "
              f"p50 {pct(lat, 50):.2f} ms, p99 {pct(lat, 99):.2f} ms, max {max(lat):.2f} ms",
              flush=True)
    finally:
        d.close()


def bench_deep(mib, runs):
    pools = (f"  fat:\n    command: [\"{BIN}/memhog\", \"{mib}\", \"3\", \"0\"]\n"
             f"    start_timeout: 0s\n")
    d = Daemon(pools)
    try:
        deadline = time.monotonic() + 60
        while True:
            v = json.loads(ctl(d.sock, "mem", "fat", "--json").stdout)
            procs = v["pools"][0]["workers"][0]["processes"]
            if len(procs) == 4 and all(p.get("rss", 0) >= mib << 20 for p in procs):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("memhog did not come up")
            time.sleep(0.1)
        times, pages = [], 0
        for _ in range(runs):
            t, out = timed([f"{DAEMON_BIN}/cowctl", "--socket", d.sock, "mem", "fat", "--deep", "--json"])
            times.append(t)
            pages = json.loads(out).get("pages_read", 0)
        t = statistics.median(times)
        print(f"deep: 4 processes x {mib} MiB: {t:.0f} ms median, {pages} pages read, "
              f"{pages / (t / 1000) / 1e6:.2f} M pages/s", flush=True)
    finally:
        d.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, nargs="+", default=[1000, 3000])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-smem", action="store_true")
    ap.add_argument("--deep-mib", type=int, default=256)
    ap.add_argument("--skip-deep", action="store_true")
    a = ap.parse_args()
    use_smem = not a.no_smem and shutil.which("smem") is not None
    if not use_smem and not a.no_smem:
        print("smem not installed (apt-get install smem): no peer comparison", flush=True)
    for n in a.n:
        bench_scale(n, a.runs, use_smem)
    if not a.skip_deep:
        bench_deep(a.deep_mib, a.runs)


if __name__ == "__main__":
    sys.exit(main())
