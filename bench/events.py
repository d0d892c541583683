#!/usr/bin/env python3
"""Events and probes at 1000 workers (issue: exit causes, events, probes). Run by hand, never
in CI; results in bench/README.md. Python 3 standard library only.

    python3 bench/events.py latency [--workers 1000] [--kills 200]
    python3 bench/events.py probes  [--workers 1000] [--seconds 20] [--kind http|tcp]
    python3 bench/events.py storm   [--workers 50] [--events 100000]

latency  A pool of --workers `sleep` workers and one `cowctl events -f --json` subscriber (a
         socket of this script's). --kills times: SIGKILL one running worker, and time from
         the kill until its `exit` event (matched by pid) reaches the subscriber. p50, p99, max.
probes   --workers cow-http workers, each on its own port, with a liveness probe every 1 s
         (http GET on a kept-alive connection, or a tcp connect and reset). Over --seconds: the daemon's CPU (utime+stime of its
         threads, /proc) as a share of one core, and `status` latency p50/p99 (a request every
         50 ms on a socket of this script's). The same run without probes gives the baseline.
storm    --workers workers that exit at once and are restarted at once, until --events events
         have happened, while one `events -f` subscriber reads nothing: `status` p50/p99 for
         another client during the storm, the daemon's RSS before and after, and the missed
         count the subscriber is told once it reads.
"""

import argparse
import json
import os
import signal
import socket
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

BIN = os.environ.get("COWHERD_BENCH_BIN", os.path.join(bl.ROOT, "build", "release", "bin"))


def request(sock_path, cmd, args=None, timeout=10):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(sock_path)
    s.sendall((json.dumps({"v": 1, "id": 1, "cmd": cmd, "args": args or {}}) + "\n").encode())
    buf = b""
    while not buf.endswith(b"\n"):
        d = s.recv(1 << 20)
        if not d:
            break
        buf += d
    s.close()
    return json.loads(buf.split(b"\n")[-2] if buf.count(b"\n") > 1 else buf)


def timed_status(sock_path):
    t = time.monotonic()
    request(sock_path, "status")
    return (time.monotonic() - t) * 1000


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def start_daemon(tmp, pools, extra=""):
    sock = os.path.join(tmp, "c.sock")
    cfg = os.path.join(tmp, "c.yaml")
    with open(cfg, "w") as f:
        f.write(f"daemon:\n  socket: {sock}\n  log_level: warn\n  shutdown_timeout: 20s\n{extra}pools:\n{pools}")
    p = bl.popen([os.path.join(BIN, "cowherd"), "-c", cfg], os.path.join(tmp, "daemon.log"))
    bl.wait_until(lambda: os.path.exists(sock), 10)
    return p, sock


def running(sock, n):
    try:
        r = request(sock, "status")
    except OSError:
        return False
    ws = [w for p in r["result"]["pools"] for w in p["workers"]]
    return sum(w["state"] == "running" for w in ws) >= n


def cpu_ticks(pid):
    total = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            s = open(f"/proc/{pid}/task/{t}/stat").read()
        except OSError:
            continue
        rest = s[s.rindex(")") + 2:].split()
        total += int(rest[11]) + int(rest[12])
    return total


def rss_kib(pid):
    for ln in open(f"/proc/{pid}/status"):
        if ln.startswith("VmRSS:"):
            return int(ln.split()[1])
    return 0


def subscribe(sock, rcvbuf=0):
    s = socket.socket(socket.AF_UNIX)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(sock)
    s.sendall(b'{"v":1,"id":9,"cmd":"events","args":{"follow":true}}\n')
    return s


def latency(a, tmp):
    d, sock = start_daemon(tmp, f"  w:\n    command: [sleep, \"100000\"]\n    workers: {a.workers}\n"
                                "    start_timeout: 100ms\n    backoff: {initial: 1s}\n")
    try:
        bl.wait_until(lambda: running(sock, a.workers), 120, 0.2)
        sub = subscribe(sock)
        sub.setblocking(False)
        buf = b""
        lat = []
        for i in range(a.kills):
            ws = [w for w in request(sock, "status")["result"]["pools"][0]["workers"]
                  if w["state"] == "running"]
            pid = ws[i % len(ws)]["pid"]
            t0 = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            got = None
            while got is None and time.monotonic() - t0 < 10:
                try:
                    chunk = sub.recv(1 << 20)
                    buf += chunk
                except BlockingIOError:
                    time.sleep(0.0002)
                    continue
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    r = json.loads(line).get("result", {})
                    if r.get("kind") == "exit" and r.get("pid") == pid:
                        got = time.monotonic()
            if got:
                lat.append((got - t0) * 1000)
            time.sleep(0.02)
        print(f"death -> event at {a.workers} workers, {len(lat)} kills: "
              f"p50 {statistics.median(lat):.2f} ms, p99 {pct(lat, 0.99):.2f} ms, max {max(lat):.2f} ms")
    finally:
        bl.terminate(d, 60)


def probes(a, tmp):
    base = 20000
    results = {}
    for with_probe in (False, True):
        probe = ""
        if with_probe:
            target = ('http: "http://127.0.0.1:{port}/"' if a.kind == "http" else 'tcp: "127.0.0.1:{port}"')
            probe = f"    liveness: {{{target}, port: {base}, interval: 1s, timeout: 1s}}\n"
        # Each server's own port: COWHERD_PROBE_PORT when the probe has one, else the same one.
        port = "$COWHERD_PROBE_PORT" if with_probe else f"$(({base} + 2 * COWHERD_WORKER))"
        pools = (f"  web:\n    command: [sh, -c, \"exec {BIN}/cow-http --port {port}\"]\n"
                 f"    workers: {a.workers}\n    start_timeout: 500ms\n{probe}")
        d, sock = start_daemon(tmp, pools)
        try:
            if not bl.wait_until(lambda: running(sock, a.workers), 180, 0.5):
                print("workers did not all run", file=sys.stderr)
            time.sleep(3)  # past the start burst and the first probes
            c0, t0 = cpu_ticks(d.pid), time.monotonic()
            lat = []
            while time.monotonic() - t0 < a.seconds:
                lat.append(timed_status(sock))
                time.sleep(0.05)
            c1, t1 = cpu_ticks(d.pid), time.monotonic()
            cpu = (c1 - c0) / bl.CLK_TCK / (t1 - t0) * 100
            results[with_probe] = (cpu, statistics.median(lat), pct(lat, 0.99))
            name = f"{a.kind} liveness every 1s" if with_probe else "no probes"
            print(f"{a.workers} workers, {name}: daemon CPU {cpu:.1f}% of one core, "
                  f"status p50 {statistics.median(lat):.1f} ms p99 {pct(lat, 0.99):.1f} ms ({len(lat)} requests)")
        finally:
            bl.terminate(d, 120)
            bl.sweep("probes run")
    print(f"probes cost {results[True][0] - results[False][0]:.1f} points of one core")


def storm(a, tmp):
    pools = (f"  storm:\n    command: [\"{BIN}/exit_with\", \"0\"]\n    workers: {a.workers}\n"
             "    start_timeout: 0s\n    backoff: {initial: 1ms, max: 1ms}\n"
             "    max_restarts: {count: 10000, within: 1ms}\n"
             "  keep:\n    command: [sleep, \"100000\"]\n")
    d, sock = start_daemon(tmp, pools)
    try:
        bl.wait_until(lambda: os.path.exists(sock), 10)
        time.sleep(1)
        sub = subscribe(sock, 4096)
        rss0 = rss_kib(d.pid)
        first = None
        lat = []
        t0 = time.monotonic()
        seq = 0
        while True:
            lat.append(timed_status(sock))
            if len(lat) % 20 == 0:
                ev = request(sock, "events", {"since_ms": 1000})["result"]["events"]
                if ev:
                    seq = ev[-1]["seq"]
                    first = first or ev[0]["seq"]
                if first and seq - first >= a.events:
                    break
            time.sleep(0.01)
        dt = time.monotonic() - t0
        rss1 = rss_kib(d.pid)
        request(sock, "stop", {"target": "storm", "wait": True}, 120)
        sub.settimeout(5)
        missed, buf = None, b""
        try:
            while missed is None:
                buf += sub.recv(1 << 20)
                for line in buf.split(b"\n")[:-1]:
                    r = json.loads(line).get("result", {})
                    if "missed" in r:
                        missed = r["missed"]
                buf = buf.split(b"\n")[-1]
        except socket.timeout:
            pass
        print(f"storm: {seq - first} events in {dt:.0f} s ({(seq - first) / dt:.0f}/s) with a stalled subscriber; "
              f"status p50 {statistics.median(lat):.1f} ms p99 {pct(lat, 0.99):.1f} ms max {max(lat):.1f} ms "
              f"({len(lat)} requests); daemon RSS {rss0 / 1024:.1f} -> {rss1 / 1024:.1f} MiB; "
              f"the subscriber was told it missed {missed}")
    finally:
        bl.terminate(d, 60)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["latency", "probes", "storm"])
    ap.add_argument("--workers", type=int)
    ap.add_argument("--kills", type=int, default=200)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--kind", choices=["http", "tcp"], default="http")
    ap.add_argument("--events", type=int, default=100000)
    a = ap.parse_args()
    a.workers = a.workers or (50 if a.mode == "storm" else 1000)
    tmp = tempfile.mkdtemp(prefix="cowbench-events-")
    try:
        {"latency": latency, "probes": probes, "storm": storm}[a.mode](a, tmp)
    finally:
        bl.sweep("events bench")


if __name__ == "__main__":
    main()
