#!/usr/bin/env python3
"""Upgrade in place at 1000 workers (issue: upgrade in place). Run by hand, never in CI;
results in bench/README.md. Python 3 standard library only.

    python3 bench/upgrade.py [--workers 1000] [--upgrades 20]

A pool of --workers `sleep` workers, each with captured stdout and stderr (two pipes each, all
handed over). Each of --upgrades runs `cowctl upgrade` and times it until it returns, which is
when an image of the daemon has answered `status` as the new one. Meanwhile a client of this
script's asks `status` back to back on a fresh connection each, and its latencies are taken
over the upgrades (a request cut off by the exec is sent again, as cowctl does, and its time
counts from the first send). Then, beside it, the full stop-and-start of the same workers
(`cowctl stop all`, `cowctl start all`, both waiting for the end): what an upgrade without
handover costs, besides the outage.
"""

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
from events import BIN, pct, request, running, start_daemon  # noqa: E402


def status_until_answered(sock):
    t = time.monotonic()
    for _ in range(50):
        try:
            r = request(sock, "status", timeout=10)
            if r.get("ok", True):
                return (time.monotonic() - t) * 1000
        except (OSError, ValueError):
            pass
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=1000)
    ap.add_argument("--upgrades", type=int, default=20)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="cowbench-upgrade-")
    ctl = os.path.join(BIN, "cowctl")
    d = None
    try:
        d, sock = start_daemon(tmp, f"  w:\n    command: [sleep, \"100000\"]\n    workers: {a.workers}\n"
                                    "    start_timeout: 100ms\n")
        bl.wait_until(lambda: running(sock, a.workers), 120, 0.2)
        lat, stop = [], threading.Event()

        def poll():
            while not stop.is_set():
                ms = status_until_answered(sock)
                if ms is not None:
                    lat.append(ms)

        th = threading.Thread(target=poll)
        th.start()
        took = []
        for _ in range(a.upgrades):
            wall, rc, out = bl.run([ctl, "-s", sock, "upgrade"])
            if rc != 0:
                bl.log(out)
                sys.exit(1)
            took.append(wall * 1000)
        stop.set()
        th.join()
        pid = request(sock, "status")["result"]["daemon"]["pid"]
        assert pid == d.pid, "the daemon's pid changed"
        t_stop, rc1, _ = bl.run([ctl, "-s", sock, "stop", "all"])
        t_start, rc2, _ = bl.run([ctl, "-s", sock, "start", "all"])
        assert rc1 == 0 and rc2 == 0
        print(f"upgrade @{a.workers} workers ({a.upgrades} upgrades): cowctl upgrade until the new image "
              f"answers p50 {statistics.median(took):.0f} ms, max {max(took):.0f} ms; status during "
              f"the upgrades p50 {statistics.median(lat):.1f} ms p99 {pct(lat, 0.99):.1f} ms max "
              f"{max(lat):.1f} ms ({len(lat)} requests); stop-and-start of the same workers "
              f"{(t_stop + t_start) * 1000:.0f} ms (stop {t_stop * 1000:.0f}, start {t_start * 1000:.0f}), "
              f"{(t_stop + t_start) * 1000 / statistics.median(took):.0f}x the upgrade")
    finally:
        bl.terminate(d, 60)
        bl.sweep("upgrade bench")


if __name__ == "__main__":
    main()
