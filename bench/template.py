"""Template forks against fork-exec, measured on the template side alone (template/): this script
drives the template protocol as cowherd does (a subreaper, a socketpair, fork requests with a go
pipe), so the figures are the template's, not the daemon's. Run by hand; results in
bench/README.md. Python 3 standard library only.

    python3 bench/template.py fork  [--sizes 64,256,1024] [--forks 40]
    python3 bench/template.py ready [--workers 20] [--objects N] [--import-seconds S]
    python3 bench/template.py footprint [--workers 8] [--table-mib 256]

fork       cow-template (C) holding a table of each size: request -> "forked" reply (the two
           forks, which copy the template's page tables).
ready      a Python app that takes over a second to import (--objects small objects, a
           --table-mib table, and --import-seconds of CPU): spawn to first line, by fork-exec of python3 against a fork from a
           template of the same app (python3 -m cowherd_template). Each worker runs one full
           collection before its first line, as a long-running one's collector gets to.
footprint  --workers workers of that app each way: the sum of Pss and SwapPss over the
           workers and the template, and each worker's USS, from smaps_rollup; the template
           with and without gc.freeze().
"""

import argparse
import os
import select
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

BIN = os.environ.get("COWHERD_BENCH_BIN", os.path.join(bl.ROOT, "build", "release", "bin"))
PR_SET_CHILD_SUBREAPER = 36

APP = '''
import gc, os, signal, time
TABLE = bytes(range(256)) * (%(mib)d * 4096)
OBJECTS = {i: ("v%%d" %% i, i) for i in range(%(objects)d)}
_t = time.monotonic()
while time.monotonic() - _t < %(import_seconds)f:  # what compiling, indexing, warming costs
    pass
def main():
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    gc.collect()  # what a long-running worker's collector gets to sooner or later
    print("up", flush=True)
    signal.sigwait({signal.SIGTERM})
'''


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


class Template:
    def __init__(self, argv, env=None):
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        e = dict(os.environ, **(env or {}))
        e["COWHERD_TEMPLATE_FD"] = str(theirs.fileno())
        e[bl.TAG_KEY] = bl.TAG
        self.p = subprocess.Popen(argv, env=e, pass_fds=[theirs.fileno()])
        theirs.close()
        self.next_id = 1
        msg = self.sock.recv(4096)
        assert msg == b"ready", msg

    def fork(self):
        """(pid, seconds to the reply, the go pipe's write end, our end of the worker's stdout)"""
        go_r, go_w = os.pipe()
        out_r, out_w = os.pipe()
        t0 = time.perf_counter()
        socket.send_fds(self.sock, [b"fork %d\nCOWHERD_WORKER=0" % self.next_id],
                        [go_r, out_w, out_w])
        reply = self.sock.recv(4096).decode()
        dt = time.perf_counter() - t0
        os.close(go_r)
        os.close(out_w)
        self.next_id += 1
        if not reply.startswith("forked "):
            raise RuntimeError(reply)
        return int(reply.split()[2]), dt, go_w, out_r

    def worker(self):
        """Forks one, lets it go and waits for its first line: (pid, seconds to the reply)."""
        pid, dt, go, out = self.fork()
        os.write(go, b"g")
        os.close(go)
        first_line(out)
        os.close(out)
        return pid, dt

    def close(self):
        self.sock.close()
        self.p.wait(30)


def first_line(fd, timeout=60):
    buf = b""
    end = time.monotonic() + timeout
    while b"\n" not in buf and time.monotonic() < end:
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            d = os.read(fd, 4096)
            if not d:
                break
            buf += d
    return buf


def stop(pid):
    os.kill(pid, signal.SIGTERM)
    os.waitpid(pid, 0)


def rollup(pid):
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        next(f)
        for line in f:
            k, v = line.split()[:2]
            out[k.rstrip(":")] = int(v)
    return out


def fork_cost(a):
    for mib in [int(x) for x in a.sizes.split(",")]:
        t = Template([f"{BIN}/cow-template", "--table-mib", str(mib)])
        replies = []
        for _ in range(a.forks):
            pid, dt = t.worker()
            replies.append(dt)
            stop(pid)
        t.close()
        print(f"template of {mib:5d} MiB: request -> forked p50 {statistics.median(replies) * 1e3:.2f} ms "
              f"p99 {pct(replies, 0.99) * 1e3:.2f} ms ({a.forks} forks)")


def write_app(tmp, a):
    with open(os.path.join(tmp, "benchapp.py"), "w") as f:
        f.write(APP % {"mib": a.table_mib, "objects": a.objects,
                       "import_seconds": a.import_seconds})
    return dict(PYTHONPATH=os.path.join(bl.ROOT, "template") + ":" + tmp)


def ready(a, tmp):
    env = write_app(tmp, a)
    e = dict(os.environ, **env)
    execs = []
    for _ in range(a.workers):
        t0 = time.perf_counter()
        p = subprocess.Popen(["/usr/bin/python3", "-c", "import benchapp; benchapp.main()"],
                             env=e, stdout=subprocess.PIPE)
        first_line(p.stdout.fileno())
        execs.append(time.perf_counter() - t0)
        p.terminate()
        p.wait()
    t0 = time.perf_counter()
    t = Template(["/usr/bin/python3", "-m", "cowherd_template", "--preload", "benchapp",
                  "--run", "benchapp:main"], env)
    load = time.perf_counter() - t0
    forks = []
    for _ in range(a.workers):
        t0 = time.perf_counter()
        pid, _ = t.worker()
        forks.append(time.perf_counter() - t0)
        stop(pid)
    t.close()
    print(f"python app ({a.objects} objects, {a.table_mib} MiB table): fork-exec to first line "
          f"p50 {statistics.median(execs) * 1e3:.1f} ms p99 {pct(execs, 0.99) * 1e3:.1f} ms; "
          f"from the template p50 {statistics.median(forks) * 1e3:.1f} ms "
          f"p99 {pct(forks, 0.99) * 1e3:.1f} ms (the template loaded in {load:.2f} s)")


def footprint(a, tmp):
    env = write_app(tmp, a)
    e = dict(os.environ, **env)

    def measure(pids, extra=()):
        rs = {p: rollup(p) for p in list(pids) + list(extra)}
        total = sum(r["Pss"] + r.get("SwapPss", 0) for r in rs.values())
        uss = [r["Private_Clean"] + r["Private_Dirty"] for p, r in rs.items() if p in pids]
        return total / 1024, statistics.median(uss) / 1024

    procs = []
    for _ in range(a.workers):
        p = subprocess.Popen(["/usr/bin/python3", "-c", "import benchapp; benchapp.main()"],
                             env=e, stdout=subprocess.PIPE)
        first_line(p.stdout.fileno())
        procs.append(p)
    tot, uss = measure([p.pid for p in procs])
    print(f"{a.workers} workers, fork-exec: footprint {tot:.0f} MiB, USS per worker {uss:.0f} MiB")
    for p in procs:
        p.terminate()
        p.wait()
    for freeze in (True, False):
        argv = ["/usr/bin/python3", "-m", "cowherd_template", "--preload", "benchapp",
                "--run", "benchapp:main"] + ([] if freeze else ["--no-freeze"])
        t = Template(argv, env)
        pids = []
        for _ in range(a.workers):
            pids.append(t.worker()[0])
        tot, uss = measure(pids, [t.p.pid])
        print(f"{a.workers} workers, template{'' if freeze else ' without gc.freeze()'}: "
              f"footprint {tot:.0f} MiB (template included), USS per worker {uss:.0f} MiB")
        for pid in pids:
            stop(pid)
        t.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["fork", "ready", "footprint"])
    ap.add_argument("--sizes", default="64,256,1024")
    ap.add_argument("--forks", type=int, default=40)
    ap.add_argument("--workers", type=int)
    ap.add_argument("--objects", type=int, default=3000000)
    ap.add_argument("--table-mib", type=int, default=64)
    ap.add_argument("--import-seconds", type=float, default=0.0,
                    help="CPU time the app's import spends besides building its data")
    a = ap.parse_args()
    if bl.libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit("cannot become a subreaper")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            if a.mode == "fork":
                fork_cost(a)
            elif a.mode == "ready":
                a.workers = a.workers or 20
                ready(a, tmp)
            else:
                a.workers = a.workers or 8
                footprint(a, tmp)
        finally:
            bl.sweep("template bench")


if __name__ == "__main__":
    main()
