#!/usr/bin/env python3
"""Memory history and `cowctl top` costs (issue 15; run by hand, figures in bench/README.md).

    python3 bench/history.py [--workers 1000] [--seconds 60] [--no-smem]

With N workers of `sleep 100000` under one cowherd:
  1. sampler CPU: the daemon's CPU time (utime + stime) over --seconds with
     daemon.memory.sample_every 10s, against the same daemon with sampling off (0), in % of
     one core; and the cost of one sample (at 1s, over --seconds / 2), beside `smem`
     reading the same processes once.
  2. history memory: the daemon's private memory (smaps_rollup) before and after each slot
     holds 360 points (an hour at 10s, filled here at 100ms), and what the history says it
     holds (`top --json`: at 100ms it is sized for 3600 points a slot; the exact size of an
     hour at 10s is the unit test History.AnHourOfAThousandWorkersAtTenSecondsFitsInEightMiB).
  3. top: the daemon's CPU while a client asks `top` once a second as the screen does (one
     connection, have_samples sent back), over --seconds, against none, once every worker
     has 30 USS points (five minutes at 10s); the reply's time and size.
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
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

BIN = os.environ.get("COWHERD_BENCH_BIN", os.path.join(bl.ROOT, "build", "release", "bin"))


def ctl(sock, *args, check=True):
    r = subprocess.run([f"{BIN}/cowctl", "--socket", sock, *args], capture_output=True,
                       text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"cowctl {args}: {r.stderr}")
    return r


def cpu_s(pid):
    return bl.proc_stat(pid)[3] / bl.CLK_TCK


def private_kib(pid):
    out = 0
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                out += int(line.split()[1])
    return out


class Daemon:
    def __init__(self, workers, every):
        self.dir = tempfile.mkdtemp(prefix="cowbench-history-")
        self.sock = f"{self.dir}/s.sock"
        with open(f"{self.dir}/c.yaml", "w") as f:
            f.write(f"daemon:\n  socket: {self.sock}\n  log_level: warn\n"
                    f"  memory: {{sample_every: {every}}}\n"
                    f"pools:\n  idle:\n    command: [/bin/sleep, \"100000\"]\n"
                    f"    workers: {workers}\n    start_timeout: 100ms\n")
        self.p = subprocess.Popen([f"{BIN}/cowherd", "-c", f"{self.dir}/c.yaml"],
                                  stdout=subprocess.DEVNULL, stderr=open(f"{self.dir}/log", "w"))

        def running():
            r = ctl(self.sock, "--json", "status", "idle", check=False)
            return r.returncode == 0 and sum(w["state"] == "running" for w in
                                             json.loads(r.stdout)["pools"][0]["workers"]) == workers

        if not bl.wait_until(running, 120, 0.2):
            raise RuntimeError("the pool did not come up")

    def pids(self):
        st = json.loads(ctl(self.sock, "--json", "status", "idle").stdout)
        return [w["pid"] for w in st["pools"][0]["workers"] if w["pid"]]

    def cpu_over(self, seconds, during=None):
        t0, c0 = time.monotonic(), cpu_s(self.p.pid)
        end = t0 + seconds
        while time.monotonic() < end:
            if during:
                during()
            time.sleep(min(1.0, max(0.0, end - time.monotonic())))
        return (cpu_s(self.p.pid) - c0) / (time.monotonic() - t0) * 100

    def history(self):
        return json.loads(ctl(self.sock, "--json", "top").stdout)

    def close(self):
        ctl(self.sock, "shutdown", check=False)
        try:
            self.p.wait(60)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--no-smem", action="store_true")
    a = ap.parse_args()
    n = a.workers

    off = Daemon(n, "0")
    try:
        idle = off.cpu_over(a.seconds)
    finally:
        off.close()
    on = Daemon(n, "10s")
    try:
        at10 = on.cpu_over(a.seconds)
    finally:
        on.close()
    print(f"{n} workers: daemon CPU with sampling off {idle:.2f}% of a core, at 10s "
          f"{at10:.2f}%: the sampler costs {at10 - idle:.2f}% of a core", flush=True)

    fast = Daemon(n, "1s")
    try:
        at1 = fast.cpu_over(a.seconds / 2)
        per_sample_ms = (at1 - idle) / 100 * 1000
        line = (f"  at 1s: {at1:.2f}% of a core, about {per_sample_ms:.0f} ms of CPU per sample "
                f"of {n} workers")
        if not a.no_smem and shutil.which("smem"):
            pids = fast.pids()
            t0 = time.monotonic()
            subprocess.run(["smem", "-c", "pid pss uss", "-P", "^/bin/sleep 100000"],
                           capture_output=True, check=False)
            smem_ms = (time.monotonic() - t0) * 1000
            line += f"; smem reading the same {len(pids)} processes once: {smem_ms:.0f} ms " \
                    f"({smem_ms / max(per_sample_ms, 1e-9):.1f}x)"
        print(line, flush=True)
    finally:
        fast.close()

    mem = Daemon(n, "100ms")
    try:
        before = private_kib(mem.p.pid)
        deadline = time.monotonic() + 600
        while True:
            h = mem.history()["history"]
            if h["slots"] and h["points"] >= 360 * h["slots"]:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"history did not fill: {h}")
            time.sleep(1)
        after = private_kib(mem.p.pid)
        # At 100ms a slot's ring is sized for 3600 points (its cap), not the 360 an hour at
        # 10s needs: `bytes` counts that capacity; the daemon's private memory counts what
        # the 360 points written so far made resident.
        print(f"history at 100ms: {h['points']} points in {h['slots']} slots, capacity "
              f"{h['bytes'] / 2**20:.2f} MiB; the daemon's private memory "
              f"{before / 1024:.1f} -> {after / 1024:.1f} MiB (+{(after - before) / 1024:.1f} MiB "
              f"for {h['points'] / h['slots']:.0f} points a worker)", flush=True)
    finally:
        mem.close()

    # top as the screen asks: one connection, one request a second, have_samples sent back
    # so that USS points come only after a new sample (one request in ten at 10s). Filling
    # 30 points a worker (a sparkline's width) takes five minutes; the sampler's own cost is
    # in both figures.
    top = Daemon(n, "10s")
    try:
        while True:
            ws = json.loads(ctl(top.sock, "--json", "top").stdout)["pools"][0]["workers"]
            if min(len(w["uss_points"]) for w in ws) >= 30:
                break
            time.sleep(5)
        times, sizes, state = [], [], {"have": None, "id": 0}

        def one():
            state["id"] += 1
            args = {"points": 30}
            if state["have"] is not None:
                args["have_samples"] = state["have"]
            t0 = time.monotonic()
            sock.sendall((json.dumps({"v": 1, "id": state["id"], "cmd": "top", "args": args})
                          + "\n").encode())
            line = f.readline()
            times.append((time.monotonic() - t0) * 1000)
            sizes.append(len(line))
            state["have"] = json.loads(line)["result"]["samples"]

        base = top.cpu_over(a.seconds)
        # Connected now: the daemon closes a connection left idle.
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(top.sock)
        f = sock.makefile("rb")
        with_top = top.cpu_over(a.seconds, one)
        sock.close()
        print(f"top at 1/s (30 USS points a worker): daemon CPU {with_top:.2f}% of a core against "
              f"{base:.2f}% without: {with_top - base:.2f}%; request p50 "
              f"{statistics.median(times):.1f} ms, reply p50 {statistics.median(sizes) / 1024:.0f} "
              f"KiB, max {max(sizes) / 1024:.0f} KiB", flush=True)
    finally:
        top.close()


if __name__ == "__main__":
    sys.exit(main())
