#!/usr/bin/env python3
"""Rolling restarts under load: cowherd's rolling restart beside PM2's cluster-mode reload.

Run by hand, never in CI. Method and results are in bench/README.md. Python 3
standard library only.

    python3 bench/rolling.py [--runs 3] [--workers 8] [--connections 64] [--rest 10]
                             [--after 10] [--systems cowherd,cowherd-all-at-once,pm2]
                             [--startup-delay MS] [--crash-loop]

Each run, for each system in turn: start a pool of --workers HTTP workers on one port, run
bench_httpload against it (closed loop, --connections connections, a fresh TCP connection per
request, an interval report every --report-every ms), let it run --rest seconds at rest, then
restart the whole pool and keep the load on until --after seconds after the restart returned.

  cowherd              `cowctl restart web`: rolling, one worker at a time (cow-http workers,
                       `ready: notify`, one socket owned by the daemon, stop_timeout 5s)
  cowherd-all-at-once  `cowctl restart web --all-at-once`: stop every worker, then start them
  pm2                  `pm2 reload web`: PM2's zero-downtime reload of a cluster-mode app
                       (bench/pm2-http.js -i N, kill_timeout 5s)

Two options for the cowherd systems only (issue 18):

  --startup-delay MS   cow-http waits MS before it sends READY=1, so that every replacement of
                       a roll takes that long while its old worker still serves
  --crash-loop         a second pool, `crash`, whose one worker exits 1 every half second
                       (`sh -c "sleep 0.5; exit 1"`, start_timeout 0s, backoff 100ms,
                       max_restarts 10000 within 1m): the daemon handles an unrelated exit every
                       ~0.6 s while the roll runs, and a roll must not take its own old,
                       still-serving worker for an orphan then

After the load every cowherd run ends with `cowctl shutdown` and measures the time from that
command's launch until the daemon has exited, and the daemon's exit status: a clean shutdown
exits 0, well within the web pool's stop_timeout (5 s). From the daemon log it counts the
`adopted orphan ... from web.N` lines before the shutdown (each an old web worker killed as an
orphan) and, under --crash-loop, the crash pool's exits inside the restart window.

Figures per run: requests and failures (whole run, and inside the restart window), the p99
latency at rest, during the restart and after it, the ratio p99(restart) / p99(rest), the worst
single-interval p99 during the restart, and the restart command's wall time. The tables show
every run and the median over the runs.

The p99 of a window is merged from bench_httpload's interval reports (each gives its request
count, p50, p99 and max): each interval's latency distribution is taken as piecewise linear
through (0, 0), (p50, 0.5), (p99, 0.99) and (max, 1), and the window's p99 is where the
request-weighted sum of those reaches 0.99. The same estimate over the whole run is printed next
to bench_httpload's exact whole-run p99 as a check.

Every process the benchmark starts carries COWBENCH_TAG=<random> in its environment; on the way
out the script kills, by pid, whatever still carries the tag. Before each measurement it waits
until no `bench/spawn.py` is running, so two benchmarks never share the cores.
"""

import argparse
import datetime
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import (  # noqa: E402  (bench/ is on sys.path when run as a script)
    ROOT,
    TAG_KEY,
    TAG,
    STD_PATH,
    CLK_TCK,
    libc,
    tracked,
    log,
    all_pids,
    proc_stat,
    vm_hwm_kib,
    alive,
    tagged_pids,
    reap_orphans,
    sweep,
    wait_until,
    bench_env,
    popen,
    run,
    terminate,
    ancestors,
    cpu_busy,
    wait_quiet,
    Contention,
    other_benchmark,
    machine,
)
POOL = "web"
CRASH = "crash"
STOP_TIMEOUT_S = 5  # the web pool's
SHUTDOWN_TIMEOUT_S = 15
# The crash-looping neighbour of --crash-loop: exits 1 every ~0.6 s (0.5 s of sleep, a 100 ms
# backoff that never grows) for as long as the benchmark runs.
CRASH_POOL = f"""  {CRASH}:
    command: ["/bin/sh", "-c", "sleep 0.5; exit 1"]
    workers: 1
    start_timeout: 0s
    backoff: {{initial: 100ms, max: 100ms}}
    max_restarts: {{count: 10000, within: 1m}}
"""

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_body(port, timeout=2.0):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                b = s.recv(4096)
                if not b:
                    break
                data += b
    except OSError:
        return None
    if not data.startswith(b"HTTP/1.1 200"):
        return None
    return data.split(b"\r\n\r\n", 1)[-1].decode(errors="replace")


# ---------------------------------------------------------------- the load and its windows


class Load:
    """bench_httpload --json with interval reports, each stamped with its arrival time."""

    def __init__(self, args, bins, port, duration, log_path):
        self.report_s = args.report_every / 1000
        argv = [bins["bench_httpload"], "127.0.0.1", str(port), "--connections",
                str(args.connections), "--duration", str(duration), "--report-every",
                str(args.report_every), "--json"]
        self.intervals, self.final = [], None
        self.t_popen = time.monotonic()
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=open(log_path, "ab"), env=bench_env())
        tracked.add(self.p.pid)
        self.th = threading.Thread(target=self._read, daemon=True)
        self.th.start()

    def _read(self):
        for raw in self.p.stdout:
            now = time.monotonic()
            try:
                o = json.loads(raw)
            except ValueError:
                continue
            if o.get("final"):
                self.final = o
            else:
                o["arrived"] = now
                self.intervals.append(o)

    def wait(self, timeout):
        try:
            self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.th.join(10)
        tracked.discard(self.p.pid)

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        tracked.discard(self.p.pid)

    def t0(self):
        """bench_httpload's clock zero on our monotonic clock: the earliest arrival minus t_s
        (a report line is printed the moment its interval closes)."""
        if not self.intervals:
            return self.t_popen
        return min(o["arrived"] - o["t_s"] for o in self.intervals)

    def windows(self):
        """The intervals with their [start, end] on bench_httpload's clock."""
        out, prev = [], 0.0
        for o in self.intervals:
            out.append(dict(o, start=prev, end=o["t_s"]))
            prev = o["t_s"]
        return out


def interval_cdf(o, x):
    """An interval's latency CDF at x ms from its report: the tail probability 1 - F is taken as
    exponential (log-linear) in x between the reported points (p50, 0.5), (p99, 0.01) and
    (max, 1/n), since latency tails fall off fast; linear from (0, 0) to (p50, 0.5)."""
    n = max(1, o["requests"] - o["failures"])
    p50, p99, mx = o["p50_ms"], o["p99_ms"], o["max_ms"]
    if x >= mx:
        return 1.0
    if x < p50:
        return 0.5 * x / p50 if p50 > 0 else 0.5
    pts = [(p50, 0.5), (p99, 0.01), (mx, min(0.01, 1 / n))]
    for (x0, q0), (x1, q1) in zip(pts, pts[1:]):
        if x < x1:
            if x1 <= x0:
                return 1 - q0
            t = (x - x0) / (x1 - x0)
            return 1 - math.exp(math.log(q0) + t * (math.log(q1) - math.log(q0)))
    return 1.0


def merged_quantile(ivs, q=0.99):
    """Estimate of the q-quantile (ms) of the requests of several intervals together."""
    ivs = [o for o in ivs if o["requests"] - o["failures"] > 0]
    if not ivs:
        return None
    weights = [o["requests"] - o["failures"] for o in ivs]
    total = sum(weights)
    lo, hi = 0.0, max(o["max_ms"] for o in ivs)
    for _ in range(60):
        mid = (lo + hi) / 2
        if sum(w * interval_cdf(o, mid) for w, o in zip(weights, ivs)) >= q * total:
            hi = mid
        else:
            lo = mid
    return hi


def window_figures(ivs):
    req = sum(o["requests"] for o in ivs)
    span = (ivs[-1]["end"] - ivs[0]["start"]) if ivs else 0
    return {
        "requests": req,
        "failures": sum(o["failures"] for o in ivs),
        "rps": req / span if span > 0 else None,
        "p50_ms": merged_quantile(ivs, 0.5),
        "p99_ms": merged_quantile(ivs, 0.99),
        "worst_interval_p99_ms": max((o["p99_ms"] for o in ivs), default=None),
        "max_ms": max((o["max_ms"] for o in ivs), default=None),
        "intervals": len(ivs),
    }


def measure(args, bins, d, port, restart_argv, env, name, old_pids):
    """Load at rest, the restart command during the load, then the load after it.

    The restart window runs from the restart command's launch until it has returned and every
    old worker (`old_pids()`, read before the load starts) has exited."""
    duration = args.rest + args.roll_allowance + args.after
    old = old_pids()  # before the load, so that reading them costs the load nothing
    load = Load(args, bins, port, duration, os.path.join(d, "httpload.err"))
    try:
        time.sleep(max(0.0, load.t_popen + args.rest - time.monotonic()))
        t_a = time.monotonic()
        roll_s, rc, out = run(restart_argv, env=env, timeout=args.roll_allowance + 60)
        t_b = time.monotonic()
        wait_until(lambda: not any(alive(p) for p in old), 30, 0.002)
        t_c = time.monotonic()
        with open(os.path.join(d, "restart.out"), "w") as f:
            f.write(out)
        if rc != 0:
            log(f"  {name}: restart exited {rc}:\n{out}")
        load.wait(duration + 30)
    finally:
        load.kill()
    t0 = load.t0()
    a, b = t_a - t0, max(t_b, t_c) - t0
    if b > duration - args.after + 0.5:
        log(f"  {name}: the restart took {roll_s:.1f}s, beyond --roll-allowance; "
            f"the 'after' window is short")
    ivs = load.windows()
    rest = [o for o in ivs if o["start"] >= args.warmup and o["end"] <= a]
    roll = [o for o in ivs if o["end"] > a and o["start"] < b]
    after = [o for o in ivs if o["start"] >= b and o["start"] < b + args.after]
    fin = load.final or {}
    r = {
        "system": name,
        "restart_s": roll_s,
        "restart_rc": rc,
        "old_gone_s": t_c - t_a,
        "old_workers": len(old),
        "requests": fin.get("requests"),
        "failures": fin.get("failures"),
        "failure_kinds": fin.get("failure_kinds"),
        "p99_run_exact_ms": (fin.get("latency_ms") or {}).get("p99"),
        "p99_run_merged_ms": merged_quantile(ivs, 0.99),
        "pids_seen": len(fin.get("answered_by") or []),
        "window_s": [a, b],
        # The same window on the wall clock, to place the daemon log's lines in it.
        "window_wall": [t + time.time() - time.monotonic() for t in (t_a, max(t_b, t_c))],
        "intervals": [{k: o[k] for k in ("start", "end", "requests", "failures", "p50_ms",
                                         "p99_ms", "max_ms", "pids")} for o in ivs],
        "rest": window_figures(rest),
        "roll": window_figures(roll),
        "after": window_figures(after),
    }
    rp, lp = r["rest"]["p99_ms"], r["roll"]["p99_ms"]
    # A failure counts when it completes: a timeout shows up --timeout (10 s) after its request
    # started, so everything after the restart began is charged to the restart.
    r["failures_before"] = sum(o["failures"] for o in ivs if o["end"] <= a)
    r["failures_since"] = (r["failures"] or 0) - r["failures_before"]
    r["p99_ratio"] = lp / rp if rp and lp is not None else None
    r["worst_ratio"] = (r["roll"]["worst_interval_p99_ms"] / rp
                        if rp and r["roll"]["worst_interval_p99_ms"] is not None else None)
    return r


# ---------------------------------------------------------------- systems


def log_time(line):
    """The wall-clock time of a daemon log line (spdlog's local time), or -inf."""
    try:
        return datetime.datetime.fromisoformat(line[:23]).timestamp()
    except ValueError:
        return -math.inf


def shutdown(ctl, daemon):
    """`cowctl shutdown`: the wall time from its launch until the daemon has exited, the
    daemon's exit status (None: still running SHUTDOWN_TIMEOUT_S + 15 s later) and cowctl's."""
    t0 = time.monotonic()
    _, ctl_rc, out = run(ctl + ["shutdown"], timeout=SHUTDOWN_TIMEOUT_S + 15)
    try:
        rc = daemon.wait(max(1.0, t0 + SHUTDOWN_TIMEOUT_S + 15 - time.monotonic()))
    except subprocess.TimeoutExpired:
        rc = None
    s = time.monotonic() - t0
    if ctl_rc != 0 or rc != 0 or s > STOP_TIMEOUT_S:
        log(f"  cowctl shutdown exited {ctl_rc} ({out.strip()}); the daemon exited {rc} "
            f"after {s:.2f} s (stop_timeout {STOP_TIMEOUT_S} s)")
    return {"shutdown_s": s, "shutdown_rc": rc, "shutdown_ctl_rc": ctl_rc}


def cowherd_run(args, bins, tmp, all_at_once):
    name = "cowherd-all-at-once" if all_at_once else "cowherd"
    d = tempfile.mkdtemp(prefix=name + "-", dir=tmp)
    port = free_port()
    sock = os.path.join(d, "cowherd.sock")
    cfg = os.path.join(d, "cowherd.yaml")
    delay = f', "--startup-delay", "{args.startup_delay}"' if args.startup_delay else ""
    with open(cfg, "w") as f:
        f.write(f"""daemon:
  socket: {sock}
  shutdown_timeout: {SHUTDOWN_TIMEOUT_S}s
pools:
  {POOL}:
    command: ["{bins['cow-http']}"{delay}]
    workers: {args.workers}
    ready: notify
    start_timeout: {5000 + args.startup_delay}ms
    stop_timeout: {STOP_TIMEOUT_S}s
    sockets: [{{name: http, listen: "tcp://127.0.0.1:{port}"}}]
""")
        if args.crash_loop:
            f.write(CRASH_POOL)
    ctl = [bins["cowctl"], "--socket", sock]
    daemon = popen([bins["cowherd"], "-c", cfg], os.path.join(d, "cowherd.log"))
    try:
        def running():
            _, rc, out = run(ctl + ["--json", "status", POOL], timeout=10)
            if rc != 0:
                return False
            ws = json.loads(out)["pools"][0]["workers"]
            return sum(w["state"] == "running" for w in ws) == args.workers

        if not wait_until(running, 30 + args.workers * args.startup_delay / 1000, 0.1) \
                or http_body(port) is None:
            raise RuntimeError(f"{name}: the pool did not come up (see {d}/cowherd.log)")
        def old_pids():
            _, _, out = run(ctl + ["--json", "status", POOL], timeout=10)
            return [w["pid"] for w in json.loads(out)["pools"][0]["workers"] if w["pid"]]

        argv = ctl + ["restart", POOL] + (["--all-at-once"] if all_at_once else [])
        r = measure(args, bins, d, port, argv, None, name, old_pids)
        _, _, out = run(ctl + ["--json", "status", POOL], timeout=10)
        ws = json.loads(out)["pools"][0]["workers"]
        r["running_after"] = sum(w["state"] == "running" for w in ws)
        with open(os.path.join(d, "cowherd.log"), errors="replace") as f:
            lines = f.readlines()
        r["kill_mode"] = next((ln.split("kill mode: ", 1)[1].strip() for ln in lines
                               if "kill mode: " in ln), "?")
        # Old web workers the daemon took for orphans before the shutdown (issue 18).
        r["web_orphaned"] = sum("adopted orphan pid" in ln and f" from {POOL}." in ln
                                for ln in lines)
        if args.crash_loop:
            _, _, out = run(ctl + ["--json", "status", CRASH], timeout=10)
            r["crash_restarts"] = sum(w["restarts"] for w in json.loads(out)["pools"][0]["workers"])
            r["crash_exits_in_restart"] = sum(
                f"{CRASH}.0 pid" in ln and "exited with status" in ln
                and r["window_wall"][0] <= log_time(ln) <= r["window_wall"][1] for ln in lines)
        r.update(shutdown(ctl, daemon))
        return r
    finally:
        terminate(daemon)
        sweep(name)
        if not args.keep:
            shutil.rmtree(d, ignore_errors=True)


def pm2_run(args, bins, tmp):
    name = "pm2"
    d = tempfile.mkdtemp(prefix="pm2-", dir=tmp)
    port = free_port()
    env = bench_env({"PM2_HOME": os.path.join(d, "home"), "PORT": str(port)})
    pm2 = [bins["pm2"]]
    try:
        _, rc, out = run(pm2 + ["start", os.path.join(ROOT, "bench", "pm2-http.js"), "-i",
                                str(args.workers), "--name", POOL, "--kill-timeout", "5000"],
                         env=env, timeout=120)
        if rc != 0:
            raise RuntimeError(f"pm2 start failed:\n{out}")

        def apps():
            _, rc, out = run(pm2 + ["jlist"], env=env, timeout=30)
            try:
                return json.loads(out[out.index("["):])
            except ValueError:
                return []

        def online():
            return sum(a["pm2_env"]["status"] == "online" for a in apps()) == args.workers

        def old_pids():
            return [a["pid"] for a in apps() if a.get("pid")]

        if not wait_until(online, 60, 0.2):
            raise RuntimeError("pm2: the app did not come online")
        # Every worker listening: distinct pids answer.
        seen = set()
        wait_until(lambda: seen.add(http_body(port)) or len(seen - {None}) >= args.workers,
                   30, 0.01)
        r = measure(args, bins, d, port, pm2 + ["reload", POOL], env, name, old_pids)
        r["running_after"] = args.workers if online() else "?"
        return r
    finally:
        run(pm2 + ["kill"], env=env, timeout=120)
        sweep(name)
        if not args.keep:
            shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------- report


def f_ms(v):
    return "-" if v is None else (f"{v:.1f}" if v >= 10 else f"{v:.2f}")


def f_x(v):
    return "-" if v is None else f"{v:.2f}x"


COLUMNS = [
    ("requests", lambda r: r["requests"], "{:,}"),
    ("fail before", lambda r: r["failures_before"], "{}"),
    ("fail since restart", lambda r: r["failures_since"], "{}"),
    ("req/s rest", lambda r: r["rest"]["rps"], "{:,.0f}"),
    ("req/s restart", lambda r: r["roll"]["rps"], "{:,.0f}"),
    ("p99 rest ms", lambda r: r["rest"]["p99_ms"], "ms"),
    ("p99 restart ms", lambda r: r["roll"]["p99_ms"], "ms"),
    ("p99 ratio", lambda r: r["p99_ratio"], "x"),
    ("worst 200ms p99", lambda r: r["roll"]["worst_interval_p99_ms"], "ms"),
    ("p99 after ms", lambda r: r["after"]["p99_ms"], "ms"),
    ("restart s", lambda r: r["restart_s"], "{:.2f}"),
    ("old gone s", lambda r: r["old_gone_s"], "{:.2f}"),
    ("web orphaned", lambda r: r.get("web_orphaned"), "{}"),
    ("crash exits in restart", lambda r: r.get("crash_exits_in_restart"), "{}"),
    ("shutdown s", lambda r: r.get("shutdown_s"), "{:.2f}"),
    ("exit", lambda r: r.get("shutdown_rc"), "{}"),
    ("other CPU", lambda r: 100 * r["foreign_cpu"], "{:.0f}%"),
]


def fmt(v, how):
    if v is None:
        return "-"
    if how == "ms":
        return f_ms(v)
    if how == "x":
        return f_x(v)
    return how.format(v)


def render(runs, systems, args):
    lines = []
    hdr = ["system", "run"] + [c[0] for c in COLUMNS]
    rows = []
    for name in systems:
        mine = [r for r in runs if r["system"] == name]
        for i, r in enumerate(mine):
            rows.append([name, str(i + 1)] + [fmt(get(r), how) for _, get, how in COLUMNS])
        if mine:
            med = []
            for _, get, how in COLUMNS:
                vals = [get(r) for r in mine if get(r) is not None]
                med.append(fmt(statistics.median(vals), how) if vals else "-")
            rows.append([name, "median"] + med)
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(hdr)]
    lines.append("| " + " | ".join(h.ljust(w) for h, w in zip(hdr, widths)) + " |")
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
    lines.append("")
    kinds = "; ".join(
        f"{r['system']}#{r['run']}: " + ", ".join(f"{k} {v}" for k, v in
                                                  (r["failure_kinds"] or {}).items() if v)
        for r in runs if r["failures"])
    lines.append("failure kinds (run totals): " + (kinds or "none"))
    lines.append("p99 estimate check, whole run, merged from intervals vs exact: " + "; ".join(
        f"{r['system']} {f_ms(r['p99_run_merged_ms'])}/{f_ms(r['p99_run_exact_ms'])}"
        for r in runs))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--rest", type=float, default=10, help="seconds of load before the restart")
    ap.add_argument("--after", type=float, default=10, help="seconds of load after it")
    ap.add_argument("--roll-allowance", type=float, default=15,
                    help="seconds the load keeps running for the restart itself")
    ap.add_argument("--warmup", type=float, default=1.0,
                    help="seconds at the start of the load left out of the 'rest' window")
    ap.add_argument("--report-every", type=int, default=200, help="ms per interval report")
    ap.add_argument("--systems", default="cowherd,cowherd-all-at-once,pm2")
    ap.add_argument("--startup-delay", type=int, default=0, metavar="MS",
                    help="cow-http --startup-delay: ms each worker takes to become ready "
                         "(cowherd systems only)")
    ap.add_argument("--crash-loop", action="store_true",
                    help="add a pool that exits 1 every ~0.6 s (cowherd systems only)")
    ap.add_argument("--bin-dir", default=os.path.join(ROOT, "build", "release", "bin"))
    ap.add_argument("--wait-for", default="bench/spawn.py",
                    help="pgrep -f pattern of a benchmark to wait for before each measurement")
    ap.add_argument("--max-busy", type=float, default=0.15,
                    help="before each measurement, wait until at most this fraction of the "
                         "CPUs is busy")
    ap.add_argument("--max-foreign", type=float, default=0.10,
                    help="redo a run when other work used more than this share of the CPUs "
                         "during it, or when --wait-for started meanwhile")
    ap.add_argument("--retries", type=int, default=3, help="redos per run at most")
    ap.add_argument("--quiet-timeout", type=float, default=1800,
                    help="seconds to wait for idle CPUs before measuring anyway")
    ap.add_argument("--json-out", help="write every run's raw figures here")
    ap.add_argument("--keep", action="store_true", help="keep the temp dirs (logs, configs)")
    args = ap.parse_args()

    bins = {b: os.path.join(args.bin_dir, b)
            for b in ("cowherd", "cowctl", "cow-http", "bench_httpload")}
    for b, path in bins.items():
        if not os.access(path, os.X_OK):
            sys.exit(f"missing {path}: build first (cmake --build build/release)")
    bins["pm2"] = shutil.which("pm2")
    systems = [s for s in args.systems.split(",") if s]
    if "pm2" in systems and not bins["pm2"]:
        log("pm2 not installed: skipped (npm i -g pm2)")
        systems.remove("pm2")
    if "pm2" in systems and (args.crash_loop or args.startup_delay):
        log("pm2: runs without --crash-loop and --startup-delay (cowherd systems only)")

    def interrupted(signo, _frame):
        raise KeyboardInterrupt(signo)

    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    PR_SET_CHILD_SUBREAPER = 36
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    tmp = tempfile.mkdtemp(prefix="cowbench-rolling-")
    started = datetime.datetime.now(datetime.timezone.utc)
    runs = []
    bin_info = {}
    try:
        # Run copies, so that a rebuild of build/release during the benchmark changes nothing.
        os.makedirs(os.path.join(tmp, "bin"))
        for b in list(bins):
            if bins[b] and bins[b].startswith(args.bin_dir):
                bins[b] = shutil.copy2(bins[b], os.path.join(tmp, "bin", b))
        bin_info = {b: {"mtime": datetime.datetime.fromtimestamp(
            os.stat(os.path.join(args.bin_dir, b)).st_mtime).isoformat(timespec="seconds")}
            for b in bins if bins[b] and bins[b].startswith(tmp)}
        for i in range(args.runs):
            for name in systems:
                for attempt in range(args.retries + 1):
                    busy = wait_quiet(args)
                    log(f"run {i + 1}/{args.runs}: {name} (load average "
                        f"{' '.join(open('/proc/loadavg').read().split()[:3])})")
                    cont = Contention()
                    if name == "pm2":
                        r = pm2_run(args, bins, tmp)
                    else:
                        r = cowherd_run(args, bins, tmp, name == "cowherd-all-at-once")
                    r["run"], r["cpu_busy_before"] = i + 1, busy
                    r["foreign_cpu"], r["attempt"] = cont.end(), attempt + 1
                    others = other_benchmark(args)
                    if r["foreign_cpu"] <= args.max_foreign and not others:
                        break
                    log(f"  other work ran meanwhile ({100 * r['foreign_cpu']:.0f}% of the "
                        f"CPUs{', ' + args.wait_for if others else ''})"
                        + ("; again" if attempt < args.retries else "; keeping it, flagged"))
                runs.append(r)
                log(f"  requests {r['requests']}, failures {r['failures']} "
                    f"({r['failures_since']} since the restart began), p99 rest "
                    f"{f_ms(r['rest']['p99_ms'])} ms, restart {f_ms(r['roll']['p99_ms'])} ms "
                    f"({f_x(r['p99_ratio'])}), restart took {r['restart_s']:.2f} s"
                    + (f", shutdown {r['shutdown_s']:.2f} s, exit {r['shutdown_rc']}, "
                       f"{r['web_orphaned']} web workers orphaned" if "shutdown_s" in r else ""))
    except KeyboardInterrupt:
        log("interrupted")
    finally:
        sweep("the benchmark")
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            log(f"kept {tmp}")
    if not runs:
        sys.exit(1)
    m = machine()
    print(f"# rolling restarts under load: {started:%Y-%m-%d %H:%M} UTC, kernel {m['kernel']}, "
          f"{m['cpus']} CPUs ({m['cpu']})")
    print(f"# {args.workers} workers, bench_httpload --connections {args.connections} (fresh "
          f"connection per request), {args.rest:g} s at rest, restart, {args.after:g} s after; "
          f"{args.runs} runs")
    if args.crash_loop or args.startup_delay:
        print(f"# cowherd: cow-http --startup-delay {args.startup_delay} ms"
              + (f"; pool '{CRASH}' exits 1 every ~0.6 s throughout" if args.crash_loop else ""))
    print(render(runs, [s for s in systems], args))
    meds = {}
    for name in systems:
        mine = [r for r in runs if r["system"] == name]
        if mine:
            meds[name] = {
                "failures": statistics.median([r["failures"] or 0 for r in mine]),
                "p99_ratio": statistics.median([r["p99_ratio"] for r in mine
                                                if r["p99_ratio"] is not None] or [0]),
            }
    print()
    for name, v in meds.items():
        print(f"{name}: median failures {v['failures']:g}, median p99 ratio "
              f"(restart/rest) {v['p99_ratio']:.2f}x")
    for name in systems:
        mine = [r for r in runs if r["system"] == name and "shutdown_s" in r]
        if mine:
            print(f"{name}: shutdown after the load took "
                  + ", ".join(f"{r['shutdown_s']:.2f} s (exit {r['shutdown_rc']})" for r in mine)
                  + f"; web pool's stop_timeout {STOP_TIMEOUT_S} s; old web workers killed as "
                  f"orphans: {sum(r['web_orphaned'] for r in mine)}")
    kms = {r.get("kill_mode") for r in runs if r.get("kill_mode")}
    if kms:
        print(f"cowherd kill mode: {', '.join(sorted(kms))}")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"started": started.isoformat(), "machine": m, "args": vars(args),
                       "binaries": bin_info,
                       "runs": runs}, f, indent=1)


if __name__ == "__main__":
    main()
