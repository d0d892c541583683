#!/usr/bin/env python3
"""Supervisor-core benchmark: cowherd side by side with supervisord (and PM2 when installed).

Run by hand, never in CI; it starts thousands of processes. Method and results are in
bench/README-spawn.md. Python 3 standard library only.

    python3 bench/spawn.py [--runs 5] [--n 100 1000] [--kills 50] [--idle-seconds 30]

Figures (each the median over --runs runs; the per-run raw numbers go to --json-out):
  1. startup: daemon launch -> all N `sleep 100000` workers exec'd, vs a bare posix_spawn loop
  2. replacement latency: SIGKILL a random worker -> its replacement's first instruction
  3. status latency: wall time of `cowctl status --json` / `supervisorctl status` / `pm2 jlist`
  4. daemon RSS, 5. daemon fds, 6. idle CPU ticks, 7. stop time and SIGTERM-to-exit time
(3-7 with the largest --n workers running.)

Every process the benchmark starts carries COWBENCH_TAG=<random> in its environment; on the way
out (and after each phase) the script kills, by pid, whatever still carries the tag.
"""

import argparse
import datetime
import json
import os
import platform
import random
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import (  # noqa: E402  (bench/ is on sys.path when run as a script)
    ROOT,
    libc,
    tracked,
    log,
    all_pids,
    sweep,
    wait_until,
    bench_env,
    popen,
)

POOL = "bench"


def now_ns():
    return time.monotonic_ns()  # CLOCK_MONOTONIC, the clock bench_stamp writes


# ---------------------------------------------------------------- /proc helpers


def proc_stat(pid):
    """(comm, state, ppid, utime+stime ticks, starttime) or None if the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            s = f.read()
    except OSError:
        return None
    lp, rp = s.find(b"("), s.rfind(b")")
    f = s[rp + 2 :].split()
    return s[lp + 1 : rp].decode(), f[0].decode(), int(f[1]), int(f[11]) + int(f[12]), int(f[19])


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def alive(pid):
    st = proc_stat(pid)
    return st is not None and st[1] != "Z"


def _has_children_files():
    me = os.getpid()
    return os.path.exists(f"/proc/{me}/task/{me}/children")


HAS_CHILDREN_FILES = _has_children_files()  # CONFIG_PROC_CHILDREN


def children_of(pid):
    """The pids whose parent is one of pid's threads (/proc/PID/task/TID/children)."""
    kids = set()
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids.update(int(x) for x in f.read().split())
        except OSError:
            pass
    return kids


class ChildCounter:
    """Counts the daemon's children whose comm is `comm` (i.e. that have exec'd it).

    With CONFIG_PROC_CHILDREN one poll reads the daemon's children files and then the stat of
    each child not yet confirmed. Without it, it lists /proc and skips pids known to belong to
    someone else while they stay in the listing (pid_max may be only 32768, so a pid that
    leaves the listing is forgotten in case it comes back as one of the daemon's)."""

    def __init__(self, daemon_pid, comm):
        self.daemon, self.comm = daemon_pid, comm
        self.confirmed, self.foreign = set(), set()

    def count(self):
        listing = children_of(self.daemon) if HAS_CHILDREN_FILES else set(all_pids())
        self.confirmed &= listing
        self.foreign &= listing
        for pid in listing - self.confirmed - self.foreign:
            st = proc_stat(pid)
            if st is None:
                continue
            if st[2] != self.daemon:
                self.foreign.add(pid)
            elif st[0] == self.comm and st[1] != "Z":
                self.confirmed.add(pid)
        return len(self.confirmed)


def timed_run(argv, env=None, timeout=120):
    """Wall time (s) of a whole command, from before fork to after its reaping."""
    t0 = now_ns()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env or bench_env())
    tracked.add(p.pid)
    out, err = p.communicate(timeout=timeout)
    dt = (now_ns() - t0) / 1e9
    tracked.discard(p.pid)
    return dt, p.returncode, out, err


def terminate(p, timeout=30):
    """SIGTERM a Popen daemon, SIGKILL it if it lingers. Seconds to exit, inf on timeout."""
    if p is None or p.poll() is not None:
        return None
    t0 = now_ns()
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout)
        return (now_ns() - t0) / 1e9
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        return float("inf")  # shown as "timeout"
    finally:
        tracked.discard(p.pid)


class Inotify:
    """Wakes when a file is modified (ctypes inotify); falls back to a 0.2 ms poll."""

    IN_MODIFY = 0x2

    def __init__(self, path):
        self.fd = -1
        try:
            fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
            if fd >= 0 and libc.inotify_add_watch(fd, path.encode(), self.IN_MODIFY) >= 0:
                self.fd = fd
            elif fd >= 0:
                os.close(fd)
        except AttributeError:
            pass

    def wait(self, timeout):
        if self.fd < 0:
            time.sleep(0.0002)
            return
        r, _, _ = select.select([self.fd], [], [], timeout)
        if r:
            try:
                os.read(self.fd, 65536)
            except BlockingIOError:
                pass

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


# ---------------------------------------------------------------- the systems


class System:
    name = "?"
    comm_sleep = "sleep"

    def __init__(self, bins, tmp):
        self.bins, self.tmp = bins, tmp
        self.proc = None  # Popen of the daemon (or of the CLI that starts it)
        self.pid = None  # the daemon's pid

    def dir(self, label):
        d = tempfile.mkdtemp(prefix=f"{self.name}-{label}-", dir=self.tmp)
        self.d = d
        return d

    def stop_daemon(self):
        """Graceful, bounded; then the sweep catches anything left."""
        terminate(self.proc)
        self.proc, self.pid = None, None


class Cowherd(System):
    name = "cowherd"
    extra_yaml = ""
    diagnostic = False

    def write_config(self, n, command, extra=""):
        self.sock = os.path.join(self.d, "cowherd.sock")
        cfg = os.path.join(self.d, "cowherd.yaml")
        with open(cfg, "w") as f:
            f.write(
                f"daemon:\n  socket: {self.sock}\n  shutdown_timeout: 30s\n"
                f"pools:\n  {POOL}:\n    command: {json.dumps(command)}\n"
                f"    workers: {n}\n    start_timeout: 0s\n    stop_timeout: 30s\n"
                f"    max_restarts: {{count: 10000, within: 1s}}\n{self.extra_yaml}{extra}"
            )
        return cfg

    def launch(self, n, command):
        cfg = self.write_config(n, command)
        self.log = os.path.join(self.d, "daemon.log")
        self.proc = popen([self.bins["cowherd"], "-c", cfg], self.log)
        self.pid = self.proc.pid

    def kill_mode(self):
        """The daemon's own account of how it reaches worker trees (cgroup or group)."""
        try:
            for line in open(self.log):
                if "kill mode:" in line:
                    return line.split("kill mode:", 1)[1].strip()
        except OSError:
            pass
        return "?"

    def ctl(self, *args):
        return [self.bins["cowctl"], "--socket", self.sock, *args]

    def status_cmd(self):
        return self.ctl("status", "--json")

    def running_by_ctl(self):
        """Workers in state running per `cowctl status --json`, or -1 if unreachable."""
        r = subprocess.run(self.ctl("status", "--json"), stdin=subprocess.DEVNULL,
                           capture_output=True, env=bench_env())
        if r.returncode != 0:
            return -1
        doc = json.loads(r.stdout)
        return sum(w["state"] == "running" for p in doc["pools"] for w in p["workers"])

    def stop_cmd(self):
        return self.ctl("--timeout", "120", "stop", POOL)

    def start_cmd(self):
        return self.ctl("--timeout", "120", "start", POOL)


class CowherdGroup(Cowherd):
    """Diagnostic variant: kill_mode: group, i.e. no per-worker cgroup (startup and
    replacement only), to show what cgroup placement costs."""

    name = "cow-group"
    extra_yaml = "    kill_mode: group\n"
    diagnostic = True


class Supervisord(System):
    name = "supervisord"

    def launch(self, n, command):
        self.sock = os.path.join(self.d, "supervisor.sock")
        self.conf = os.path.join(self.d, "supervisord.conf")
        with open(self.conf, "w") as f:
            f.write(
                f"[unix_http_server]\nfile={self.sock}\n"
                f"[supervisord]\nnodaemon=true\nlogfile={self.d}/supervisord.log\n"
                f"pidfile={self.d}/supervisord.pid\nchildlogdir={self.d}\nloglevel=info\n"
                f"minfds=1024\nminprocs=200\n"
                "[rpcinterface:supervisor]\n"
                "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n"
                f"[supervisorctl]\nserverurl=unix://{self.sock}\n"
                f"[program:x]\ncommand={' '.join(command)}\nnumprocs={n}\n"
                "process_name=%(program_name)s_%(process_num)d\nstartsecs=0\n"
                "autorestart=true\nstopwaitsecs=30\nstdout_logfile=NONE\nredirect_stderr=true\n"
            )
        self.proc = popen([self.bins["supervisord"], "-c", self.conf],
                          os.path.join(self.d, "stdout.log"))
        self.pid = self.proc.pid

    def ctl(self, *args):
        return [self.bins["supervisorctl"], "-c", self.conf, *args]

    def status_cmd(self):
        return self.ctl("status")

    def stop_cmd(self):
        return self.ctl("stop", "all")

    def start_cmd(self):
        return self.ctl("start", "all")


class Pm2(System):
    name = "pm2"

    def env(self):
        return bench_env({"PM2_HOME": os.path.join(self.d, "home")})

    def launch(self, n, command):
        eco = os.path.join(self.d, "ecosystem.json")
        with open(eco, "w") as f:
            json.dump({"apps": [{
                "name": "x", "script": command[0], "args": command[1:], "instances": n,
                "exec_mode": "fork", "interpreter": "none", "autorestart": True,
                "max_restarts": 10000, "out_file": "/dev/null", "error_file": "/dev/null",
            }]}, f)
        # The CLI starts the God daemon and returns; the daemon's pid is in PM2_HOME/pm2.pid.
        self.proc = popen([self.bins["pm2"], "start", eco], os.path.join(self.d, "cli.log"),
                          env=self.env())
        pidfile = os.path.join(self.d, "home", "pm2.pid")
        if not wait_until(lambda: os.path.exists(pidfile) and open(pidfile).read().strip(), 60):
            raise RuntimeError("pm2 daemon did not write its pid file")
        self.pid = int(open(pidfile).read().strip())

    def ctl(self, *args):
        return [self.bins["pm2"], *args]

    def status_cmd(self):
        return self.ctl("jlist")

    def stop_cmd(self):
        return self.ctl("stop", "all")

    def start_cmd(self):
        return self.ctl("start", "all")

    def stop_daemon(self):
        # Not measured: SIGKILL the God daemon (`pm2 kill` takes a minute with 1000 workers);
        # the sweep that follows kills its workers by tag.
        if self.proc is not None:
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            tracked.discard(self.proc.pid)
        if self.pid and alive(self.pid):
            os.kill(self.pid, signal.SIGKILL)
        self.proc, self.pid = None, None

    def sigterm_exit(self):
        """The God daemon is not our Popen child (it is adopted by us, the subreaper)."""
        t0 = now_ns()
        os.kill(self.pid, signal.SIGTERM)
        ok = wait_until(lambda: not alive(self.pid), 120, 0.002)
        return (now_ns() - t0) / 1e9 if ok else float("inf")


# ---------------------------------------------------------------- measurements


def pct(values, p):
    s = sorted(values)
    if not s:
        return None
    k = (len(s) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def floor_startup(bins, n):
    # Output to a file, not a pipe: the children inherit stdout and outlive the loop.
    with tempfile.TemporaryFile() as out:
        t0 = now_ns()
        r = subprocess.run([bins["bench_floor_spawn"], str(n)], stdin=subprocess.DEVNULL,
                           stdout=out, stderr=out, env=bench_env())
        wall = (now_ns() - t0) / 1e9
        out.seek(0)
        lines = out.read().decode().split()
    if r.returncode != 0 or lines[0] != "elapsed_ns":
        raise RuntimeError(f"bench_floor_spawn failed: {' '.join(lines)}")
    inner = int(lines[1]) / 1e9
    for pid in map(int, lines[2:]):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    sweep()
    return inner, wall


def startup_proc(sysm, n, poll_s):
    """Launch -> N exec'd `sleep` children of the daemon, counted from /proc every poll_s."""
    sysm.dir(f"start{n}")
    t0 = now_ns()
    sysm.launch(n, ["sleep", "100000"])
    counter = ChildCounter(sysm.pid, sysm.comm_sleep)
    polls, cost = 0, 0
    deadline = time.monotonic() + 120
    while True:
        p0 = now_ns()
        done = counter.count() >= n
        cost += now_ns() - p0
        polls += 1
        if done:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"{sysm.name}: only {counter.count()}/{n} workers after 120 s")
        time.sleep(poll_s)
    return (now_ns() - t0) / 1e9, polls, cost / polls / 1e9


def startup_ctl(cow, n, poll_s):
    """cowherd only: launch -> `cowctl status --json` reports N workers running."""
    cow.dir(f"ctl{n}")
    t0 = now_ns()
    cow.launch(n, ["sleep", "100000"])
    polls, poll_time = 0, 0.0
    deadline = time.monotonic() + 120
    while True:
        p0 = now_ns()
        running = cow.running_by_ctl()
        poll_time += (now_ns() - p0) / 1e9
        polls += 1
        if running >= n:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"cowherd: only {running}/{n} running after 120 s")
        time.sleep(poll_s)
    return (now_ns() - t0) / 1e9, polls, poll_time / polls


def replacement(sysm, n, kills, bins):
    """N bench_stamp workers; SIGKILL a random one `kills` times; latency = new stamp - kill."""
    d = sysm.dir(f"repl{n}")
    stamps = os.path.join(d, "stamps.txt")
    open(stamps, "w").close()
    sysm.launch(n, [bins["bench_stamp"], stamps])
    ino = Inotify(stamps)
    lines = []
    offset = 0

    def read_new():
        nonlocal offset
        with open(stamps, "rb") as f:
            f.seek(offset)
            data = f.read()
        complete = data[: data.rfind(b"\n") + 1]
        offset += len(complete)
        new = [tuple(map(int, ln.split())) for ln in complete.splitlines()]
        lines.extend(new)
        return new

    if not wait_until(lambda: read_new() is not None and len(lines) >= n, 120, 0.01):
        raise RuntimeError(f"{sysm.name}: only {len(lines)}/{n} stamps after 120 s")
    counter = ChildCounter(sysm.pid, "bench_stamp")
    if not wait_until(lambda: counter.count() >= n, 30, 0.01):
        raise RuntimeError(f"{sysm.name}: only {counter.count()}/{n} stamp workers")
    live = {pid for pid, _ in lines}
    rng = random.Random(0x5EED + n)
    lat = []
    time.sleep(0.5)
    for _ in range(kills):
        time.sleep(rng.uniform(0.02, 0.05))  # let the daemon go idle between kills
        pid = rng.choice(sorted(live))
        st = proc_stat(pid)
        if st is None or st[2] != sysm.pid:  # never signal a stranger
            raise RuntimeError(f"{sysm.name}: pid {pid} is no longer the daemon's worker")
        t0 = now_ns()
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        new = []
        while not new:
            ino.wait(0.05)
            new = read_new()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{sysm.name}: no replacement within 30 s")
        live.discard(pid)
        for npid, ts in new:
            live.add(npid)
        lat.append((new[0][1] - t0) / 1e9)
        # A supervisor must not restart twice; wait until the pid set is settled anyway.
    ino.close()
    return lat


def floor_replacement(bins, tmp, kills):
    f = os.path.join(tempfile.mkdtemp(prefix="floor-repl-", dir=tmp), "stamps.txt")
    r = subprocess.run([bins["bench_floor_spawn"], "--replace", str(kills), f,
                        bins["bench_stamp"]], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=bench_env())
    if r.returncode != 0:
        raise RuntimeError("bench_floor_spawn --replace failed")
    vals = [int(x) / 1e9 for x in r.stdout.decode().split("\n", 1)[1].split()]
    sweep()
    return vals


def daemon_figures(sysm, n, status_runs, idle_s):
    """With N sleep workers running under sysm: figures 3-7."""
    out = {}
    time.sleep(1.0)  # let the start-up burst settle (logging, supervisord's RUNNING ticks)
    env = sysm.env() if isinstance(sysm, Pm2) else bench_env()
    times = []
    for _ in range(status_runs):
        dt, rc, _, err = timed_run(sysm.status_cmd(), env)
        if rc not in (0, 3) and not isinstance(sysm, Supervisord):
            raise RuntimeError(f"{sysm.name} status failed rc={rc}: {err[-300:]}")
        times.append(dt)
    out["status_p50"] = statistics.median(times)
    out["status_p90"] = pct(times, 90)
    out["rss_kib"] = vm_rss_kib(sysm.pid)
    out["fds"] = fd_count(sysm.pid)
    out["fds_per_worker"] = out["fds"] / n
    time.sleep(1.0)
    c0 = proc_stat(sysm.pid)[3]
    time.sleep(idle_s)
    out["idle_ticks"] = proc_stat(sysm.pid)[3] - c0
    # 7. stop every worker through the CLI (each CLI waits until they are stopped) ...
    dt, rc, _, err = timed_run(sysm.stop_cmd(), env, timeout=300)
    counter = ChildCounter(sysm.pid, sysm.comm_sleep)
    if rc != 0 or counter.count() != 0:
        log(f"  {sysm.name}: stop rc={rc}, {counter.count()} sleeps left: {err[-300:]!r}")
    out["stop_s"] = dt
    # ... start them again, then time SIGTERM -> daemon exit with N running.
    dt, rc, _, err = timed_run(sysm.start_cmd(), env, timeout=300)
    counter = ChildCounter(sysm.pid, sysm.comm_sleep)
    if not wait_until(lambda: counter.count() >= n, 120, 0.01):
        raise RuntimeError(f"{sysm.name}: restart after stop reached {counter.count()}/{n}")
    time.sleep(1.0)
    if isinstance(sysm, Pm2):
        out["sigterm_exit_s"] = sysm.sigterm_exit()
    else:
        out["sigterm_exit_s"] = terminate(sysm.proc, 120)
        sysm.proc = None
    return out


# ---------------------------------------------------------------- driver


def one_run(args, bins, systems, tmp, run_no):
    res = {}

    def put(key, sysname, value):
        res.setdefault(key, {})[sysname] = value

    largest = max(args.n)
    for n in args.n:
        floors, inners = [], []
        for sysm in systems:
            # A floor right before each system: the machine's speed drifts (other load, page
            # cache), so each system is compared with a floor taken moments earlier.
            inner, wall = floor_startup(bins, n)
            floors.append(wall)
            inners.append(inner)
            log(f"  floor N={n}: {wall*1e3:.0f} ms wall ({inner*1e3:.0f} ms inside)")
            time.sleep(0.5)
            try:
                dt, polls, cost = startup_proc(sysm, n, args.poll_ms / 1e3)
                put(f"startup{n}", sysm.name, dt)
                put(f"startup{n}_ratio", sysm.name, dt / wall)
                put(f"startup{n}_proc_pollcost", sysm.name, cost)
                log(f"  {sysm.name} N={n}: {dt*1e3:.0f} ms ({polls} /proc polls, "
                    f"{cost*1e3:.2f} ms each)")
                if isinstance(sysm, Cowherd) and sysm.name not in res.get("kill_mode", {}):
                    put("kill_mode", sysm.name, sysm.kill_mode())
                if n == largest and not getattr(sysm, "diagnostic", False):
                    figs = daemon_figures(sysm, n, args.status_runs, args.idle_seconds)
                    for k, v in figs.items():
                        put(k, sysm.name, v)
                    log(f"  {sysm.name} N={n}: " + ", ".join(
                        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in figs.items()))
            finally:
                sysm.stop_daemon()
                sweep(f"{sysm.name} startup")
            time.sleep(0.5)
            if isinstance(sysm, Cowherd) and not sysm.diagnostic:
                try:
                    dt, polls, cost = startup_ctl(sysm, n, args.poll_ms / 1e3)
                    put(f"startup{n}_ctl", sysm.name, dt)
                    put(f"startup{n}_ctl_polls", sysm.name, polls)
                    put(f"startup{n}_ctl_pollcost", sysm.name, cost)
                    log(f"  cowherd N={n} via cowctl: {dt*1e3:.0f} ms "
                        f"({polls} polls, {cost*1e3:.1f} ms each)")
                finally:
                    sysm.stop_daemon()
                    sweep("cowherd cowctl startup")
                time.sleep(0.5)
        put(f"startup{n}", "floor", statistics.median(floors))
        put(f"startup{n}_floor_inner", "floor", statistics.median(inners))
    for n in args.n:
        lat = floor_replacement(bins, tmp, args.kills)
        put(f"repl{n}_p50", "floor", statistics.median(lat))
        put(f"repl{n}_max", "floor", max(lat))
        for sysm in systems:
            try:
                lat = replacement(sysm, n, args.kills, bins)
                put(f"repl{n}_p50", sysm.name, statistics.median(lat))
                put(f"repl{n}_max", sysm.name, max(lat))
                put(f"repl{n}_all", sysm.name, lat)
                log(f"  {sysm.name} N={n} replacement: p50 {statistics.median(lat)*1e3:.2f} ms,"
                    f" max {max(lat)*1e3:.2f} ms")
            finally:
                sysm.stop_daemon()
                sweep(f"{sysm.name} replacement")
            time.sleep(0.5)
    return res


def fmt_ms(v):
    if v is None:
        return "-"
    if v == float("inf"):
        return "timeout"
    return f"{v*1e3:.2f}" if v < 0.1 else f"{v*1e3:.0f}"


def render(args, runs, names):
    def med(key, name):
        vals = [r[key][name] for r in runs if key in r and name in r[key]
                and r[key][name] is not None]
        return statistics.median(vals) if vals else None

    def worst(key, name):
        vals = [r[key][name] for r in runs if key in r and name in r[key]
                and r[key][name] is not None]
        return max(vals) if vals else None

    cols = ["floor"] + names
    head = f"{'figure':<44}" + "".join(f"{c:>12}" for c in cols) + f"  {'target':<14}verdict"
    rows = [head, "-" * len(head)]
    largest = max(args.n)

    def row(label, key, fmt, target="", check=None, agg=med, only=None):
        vals = {c: agg(key, c) for c in cols}
        cells = "".join(f"{(fmt(vals[c]) if vals[c] is not None else '-'):>12}" for c in cols)
        verdict = ""
        if check and vals.get("cowherd") is not None:
            verdict = "ok" if check(vals["cowherd"], vals) else "MISSED"
        rows.append(f"{label:<44}{cells}  {target:<14}{verdict}".rstrip())
        return vals

    def ratio_row(label, base_vals, over, target="", check=None):
        cells, verdict = "", ""
        for c in cols:
            b, v = base_vals.get(over), base_vals.get(c)
            ok = b and v is not None and b != float("inf") and v != float("inf")
            cells += f"{(f'{v / b:.2f}x' if ok else '-'):>12}"
        if check:
            b, v = base_vals.get(over), base_vals.get("cowherd")
            if b and v is not None:
                verdict = "ok" if check(v / b) else "MISSED"
        rows.append(f"{label:<44}{cells}  {target:<14}{verdict}".rstrip())

    for n in args.n:
        v = row(f"1. startup N={n}, ms (/proc count)", f"startup{n}", fmt_ms)
        row(f"   ratio vs the floor taken just before", f"startup{n}_ratio",
            lambda x: f"{x:.2f}x", "<=1.3x @1000" if n == 1000 else "",
            (lambda x, _: x <= 1.3) if n == 1000 else None)
        ratio_row(f"   ratio of the medians vs floor", v, "floor")
        ratio_row(f"   ratio vs cowherd", v, "cowherd")
        row(f"   cost of one /proc poll (python), ms", f"startup{n}_proc_pollcost", fmt_ms)
        row(f"   floor: time inside the spawn loop, ms", f"startup{n}_floor_inner", fmt_ms)
        row(f"   cowherd via cowctl status poll, ms", f"startup{n}_ctl", fmt_ms)
        row(f"   cowctl polls until all running", f"startup{n}_ctl_polls", lambda x: f"{x:.0f}")
        row(f"   cost of one cowctl poll, ms", f"startup{n}_ctl_pollcost", fmt_ms)
    for n in args.n:
        row(f"2. replacement N={n}: p50, ms", f"repl{n}_p50", fmt_ms, "<=2 ms",
            lambda v, _: v <= 0.002)
        row(f"   max (median of runs' max), ms", f"repl{n}_max", fmt_ms, "<=5 ms",
            lambda v, _: v <= 0.005)
        row(f"   max (worst over all runs), ms", f"repl{n}_max", fmt_ms, "<=5 ms",
            lambda v, _: v <= 0.005, agg=worst)
    v = row(f"3. status @{largest}: median, ms", "status_p50", fmt_ms)
    ratio_row("   ratio vs cowherd", v, "cowherd")
    row(f"   p90, ms", "status_p90", fmt_ms)
    v = row(f"4. daemon RSS @{largest}, MiB", "rss_kib", lambda x: f"{x/1024:.1f}")
    ratio_row("   ratio vs cowherd", v, "cowherd")
    row(f"5. daemon fds @{largest}", "fds", lambda x: f"{x:.0f}")
    row(f"   fds per worker", "fds_per_worker", lambda x: f"{x:.3f}")
    row(f"6. idle CPU ticks in {args.idle_seconds:g} s @{largest}", "idle_ticks",
        lambda x: f"{x:.0f}", "0 ticks", lambda v, _: v == 0)
    row(f"7. stop all @{largest} (CLI wall), ms", "stop_s", fmt_ms, "<=500 ms",
        lambda v, _: v <= 0.5)
    row(f"   SIGTERM -> daemon exit @{largest}, ms", "sigterm_exit_s", fmt_ms, "<=500 ms",
        lambda v, _: v <= 0.5)
    return "\n".join(rows)


def machine():
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{platform.node()}: Linux {platform.release()}, {os.cpu_count()} CPUs ({cpu}), "
            f"{mem:.0f} GiB RAM, pid_max {open('/proc/sys/kernel/pid_max').read().strip()}")


def versions(bins):
    out = {}
    try:
        r = subprocess.run([bins["cowherd"], "--version"], capture_output=True, timeout=10)
        out["cowherd"] = r.stdout.decode().strip()
    except (OSError, subprocess.TimeoutExpired):
        out["cowherd"] = "?"
    if bins.get("supervisord"):
        r = subprocess.run([bins["supervisord"], "--version"], capture_output=True, timeout=30)
        out["supervisord"] = r.stdout.decode().strip()
    if bins.get("pm2"):
        # `pm2 --version` would start a God daemon in ~/.pm2; read the package instead.
        pkg = os.path.join(os.path.dirname(os.path.realpath(bins["pm2"])), "..", "package.json")
        try:
            out["pm2"] = json.load(open(pkg))["version"]
        except (OSError, ValueError, KeyError):
            out["pm2"] = "?"
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--n", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--kills", type=int, default=50)
    ap.add_argument("--status-runs", type=int, default=30)
    ap.add_argument("--idle-seconds", type=float, default=30)
    ap.add_argument("--poll-ms", type=float, default=5)
    ap.add_argument("--bin-dir", default=os.path.join(ROOT, "build", "release", "bin"))
    ap.add_argument("--systems", default="cowherd,supervisord,pm2",
                    help="comma list; peers that are not installed are skipped")
    ap.add_argument("--json-out", help="write every run's raw figures here")
    ap.add_argument("--no-group-variant", action="store_true",
                    help="skip the diagnostic cowherd column with kill_mode: group")
    ap.add_argument("--from-json", metavar="FILE",
                    help="only re-print the table of a run saved with --json-out")
    args = ap.parse_args()
    if args.from_json:
        report_from_json(args.from_json)
        return

    bins = {b: os.path.join(args.bin_dir, b)
            for b in ("cowherd", "cowctl", "bench_stamp", "bench_floor_spawn")}
    for b, path in bins.items():
        if not os.access(path, os.X_OK):
            sys.exit(f"missing {path}: build first (cmake --build build/release)")
    bins["supervisord"] = shutil.which("supervisord")
    bins["supervisorctl"] = shutil.which("supervisorctl")
    bins["pm2"] = shutil.which("pm2")
    wanted = args.systems.split(",")
    systems_cls = [Cowherd] + ([] if args.no_group_variant else [CowherdGroup])
    if "supervisord" in wanted:
        if bins["supervisord"] and bins["supervisorctl"]:
            systems_cls.append(Supervisord)
        else:
            log("supervisord not installed: skipped (apt-get install -y supervisor)")
    if "pm2" in wanted:
        if bins["pm2"]:
            systems_cls.append(Pm2)
        else:
            log("pm2 not installed: skipped (npm i -g pm2)")

    # Ctrl-C or kill -TERM still runs the cleanup below (a shell's background job starts
    # with SIGINT ignored, so install the handler explicitly).
    def interrupted(signo, _frame):
        raise KeyboardInterrupt(signo)

    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    # Orphans of killed daemons come to us, not to init, so nothing escapes the sweep.
    PR_SET_CHILD_SUBREAPER = 36
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    soft, hard = __import__("resource").getrlimit(__import__("resource").RLIMIT_NOFILE)
    tmp = tempfile.mkdtemp(prefix="cowbench-")
    started = datetime.datetime.now(datetime.timezone.utc)
    runs = []
    vers = versions(bins)
    load_before = open("/proc/loadavg").read().split()[:3]
    systems = [c(bins, tmp) for c in systems_cls]
    try:
        for i in range(args.runs):
            log(f"run {i + 1}/{args.runs} (load average "
                f"{' '.join(open('/proc/loadavg').read().split()[:3])})")
            runs.append(one_run(args, bins, systems, tmp, i))
    except KeyboardInterrupt:
        log("interrupted")
    finally:
        for s in systems:
            try:
                s.stop_daemon()
            except Exception:  # noqa: BLE001 - cleaning up regardless
                pass
        sweep("the benchmark")
        shutil.rmtree(tmp, ignore_errors=True)
    if not runs:
        sys.exit(1)
    meta = {
        "command": f"bench/spawn.py {' '.join(sys.argv[1:])}".rstrip(),
        "started": f"{started:%Y-%m-%d %H:%M} UTC",
        "machine": f"{machine()}; fd limit {soft}",
        "load_before": load_before,
        "load_after": open("/proc/loadavg").read().split()[:3],
        "versions": vers,
        "names": [c.name for c in systems_cls],
    }
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"args": vars(args), "meta": meta, "runs": runs}, f, indent=1)
    report(args, meta, runs)


def report(args, meta, runs):
    modes = {}
    for r in runs:
        for k, v in r.get("kill_mode", {}).items():
            modes.setdefault(k, v)
    print(f"# {meta['command']}")
    print(f"# {meta['started']}; {meta['machine']}")
    print(f"# load average before {' '.join(meta['load_before'])}, "
          f"after {' '.join(meta['load_after'])}")
    print("# " + "; ".join(f"{k} {v}" for k, v in meta["versions"].items()))
    for k, v in modes.items():
        print(f"# {k} kill mode: {v}")
    print(f"# median of {len(runs)} runs; {args.kills} kills per replacement run; "
          f"{args.status_runs} status calls; /proc polled every {args.poll_ms:g} ms")
    print(render(args, runs, meta["names"]))


def report_from_json(path):
    """Re-print the table of a saved run (--json-out) without running anything."""
    doc = json.load(open(path))
    args = argparse.Namespace(**doc["args"])
    meta = doc.get("meta") or {}
    names = meta.get("names") or [
        n for n in ("cowherd", "cow-group", "supervisord", "pm2")
        if any(n in r.get(f"startup{args.n[0]}", {}) for r in doc["runs"])]
    meta = {"command": meta.get("command", "bench/spawn.py (command not recorded)"),
            "started": meta.get("started", "?"),
            "machine": meta.get("machine", doc.get("machine", "?")),
            "load_before": meta.get("load_before", ["?"]),
            "load_after": meta.get("load_after", ["?"]),
            "versions": meta.get("versions", doc.get("versions", {})), "names": names}
    report(args, meta, doc["runs"])


if __name__ == "__main__":
    main()
