"""Helpers shared by bench/logs.py, bench/rolling.py and bench/spawn.py: tagged child processes, reaping as a
subreaper, sweeping leftovers, and waiting for a quiet machine before a measurement.

Every process a benchmark starts carries COWBENCH_TAG=<random> in its environment; sweep()
kills, by pid, whatever still carries the tag.
"""

import ctypes
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TAG_KEY = "COWBENCH_TAG"
TAG = uuid.uuid4().hex
STD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CLK_TCK = os.sysconf("SC_CLK_TCK")

libc = ctypes.CDLL(None, use_errno=True)
tracked = set()  # pids of our Popen children


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- processes


def all_pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def proc_stat(pid):
    """(comm, state, ppid, utime+stime ticks) or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    comm = s[s.index("(") + 1:s.rindex(")")]
    rest = s[s.rindex(")") + 2:].split()
    return comm, rest[0], int(rest[1]), int(rest[11]) + int(rest[12])


def vm_hwm_kib(pid):
    try:
        for ln in open(f"/proc/{pid}/status"):
            if ln.startswith("VmHWM:"):
                return int(ln.split()[1])
    except OSError:
        pass
    return None


def alive(pid):
    st = proc_stat(pid)
    return st is not None and st[1] != "Z"


def tagged_pids():
    needle = f"{TAG_KEY}={TAG}".encode()
    me, out = os.getpid(), []
    for pid in all_pids():
        if pid == me:
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if needle in f.read():
                    out.append(pid)
        except OSError:
            pass
    return out


def reap_orphans():
    me = os.getpid()
    for pid in all_pids():
        st = proc_stat(pid)
        if pid not in tracked and st and st[2] == me and st[1] == "Z":
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass


def sweep(what=""):
    left = tagged_pids()
    if left and what:
        log(f"  sweep after {what}: killing {len(left)} leftover processes")
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    wait_until(lambda: not any(alive(p) for p in left), 10)
    reap_orphans()


def wait_until(pred, timeout, interval=0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return pred()


def bench_env(extra=None):
    env = dict(os.environ)
    env["PATH"] = STD_PATH + ":" + os.path.dirname(shutil.which("node") or "/usr/bin")
    env[TAG_KEY] = TAG
    for k in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
        env.pop(k, None)
    env.update(extra or {})
    return env


def popen(argv, log_path=None, env=None, **kw):
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                         env=env or bench_env(), **kw)
    if log_path:
        out.close()
    tracked.add(p.pid)
    return p


def run(argv, env=None, timeout=300):
    """(wall seconds, returncode, stdout+stderr text) of a whole command."""
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, env=env or bench_env())
    tracked.add(p.pid)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
    tracked.discard(p.pid)
    return time.monotonic() - t0, p.returncode, out.decode(errors="replace")

def terminate(p, timeout=30):
    if p is None:
        return
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    tracked.discard(p.pid)


def ancestors():
    out, pid = set(), os.getpid()
    while pid > 1:
        out.add(pid)
        st = open(f"/proc/{pid}/stat").read()
        pid = int(st[st.rindex(")") + 2:].split()[1])
    return out


def cpu_busy(seconds=1.0):
    """Fraction of all CPUs busy (not idle, not iowait) over `seconds`."""
    def sample():
        v = [int(x) for x in open("/proc/stat").readline().split()[1:]]
        return sum(v), v[3] + v[4]
    t0, i0 = sample()
    time.sleep(seconds)
    t1, i1 = sample()
    return 1 - (i1 - i0) / max(1, t1 - t0)


def wait_quiet(args):
    """Wait until no other benchmark (--wait-for) runs and the CPUs are idle (at most
    --max-busy busy over 2 s), so that runs never share the cores. Returns the busy fraction
    seen last (after --quiet-timeout it gives up waiting for idleness and says so)."""
    said = False
    mine = ancestors()
    while True:
        r = subprocess.run(["pgrep", "-f", args.wait_for], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL)
        others = [int(x) for x in r.stdout.split() if int(x) not in mine]
        if not others:
            break
        if not said:
            log(f"  waiting: {args.wait_for} is running (pids {others})")
            said = True
        time.sleep(5)
    deadline = time.monotonic() + args.quiet_timeout
    said = False
    while True:
        busy = cpu_busy(2.0)
        if busy <= args.max_busy:
            return busy
        if time.monotonic() > deadline:
            log(f"  the CPUs are still {100 * busy:.0f}% busy; measuring anyway")
            return busy
        if not said:
            log(f"  waiting: the CPUs are {100 * busy:.0f}% busy (other work on the machine)")
            said = True
        time.sleep(3)


class Contention:
    """The share of the CPUs that other work on the machine used while we measured: every
    CPU's user+nice+system time (/proc/stat) minus our own and our reaped descendants'
    (os.times). Every process a run starts has been reaped, directly or through its parents,
    before end(), so its CPU time is in our children's times by then."""

    def __init__(self):
        self.t, self.busy, self.ours = time.monotonic(), self._busy(), self._ours()

    @staticmethod
    def _busy():
        v = open("/proc/stat").readline().split()[1:]
        return (int(v[0]) + int(v[1]) + int(v[2])) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _ours():
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def end(self):
        dt = time.monotonic() - self.t
        foreign = (self._busy() - self.busy) - (self._ours() - self.ours)
        return max(0.0, foreign) / (dt * (os.cpu_count() or 1))


def other_benchmark(args):
    r = subprocess.run(["pgrep", "-f", args.wait_for], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL)
    mine = ancestors()
    return [int(x) for x in r.stdout.split() if int(x) not in mine]


def machine():
    cpu = "?"
    try:
        for ln in open("/proc/cpuinfo"):
            if ln.startswith("model name"):
                cpu = ln.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"kernel": platform.release(), "cpus": os.cpu_count(), "cpu": cpu,
            "python": platform.python_version()}
