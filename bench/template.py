"""Template forks against fork-exec, measured on the template side alone (template/): this script
drives the template protocol as cowherd does (a subreaper, a socketpair, fork requests with a go
pipe), so the figures are the template's, not the daemon's. Run by hand; results in
bench/README.md. Python 3 standard library only.

    python3 bench/template.py fork  [--sizes 64,256,1024] [--forks 40]
    python3 bench/template.py ready [--workers 20] [--objects N] [--import-seconds S]
    python3 bench/template.py footprint [--workers 8] [--table-mib 256]
    python3 bench/template.py pool [--workers 8] [--table-mib 64] [--objects N] [--requests 5000]

fork       cow-template (C) holding a table of each size: request -> "forked" reply (the two
           forks, which copy the template's page tables).
ready      a Python app that takes over a second to import (--objects small objects, a
           --table-mib table, and --import-seconds of CPU): spawn to first line, by fork-exec of python3 against a fork from a
           template of the same app (python3 -m cowherd_template). Each worker runs one full
           collection before its first line, as a long-running one's collector gets to.
footprint  --workers workers of that app each way: the sum of Pss and SwapPss over the
           workers and the template, and each worker's USS, from smaps_rollup; the template
           with and without gc.freeze().
pool       the same HTTP app (the table, the objects, and each request reading --touch random
           objects, whose reference counts copy-on-write then copies) as one pool of a real
           cowherd, three ways in turn: spawn: exec, spawn: template, and spawn: template
           without gc.freeze(). For each, `cowctl mem` right after start and again after
           --requests requests from bench_httpload: footprint, USS per worker, saved by
           sharing and saved vs fork-exec, and how much sharing the requests eroded.
"""

import argparse
import json
import os
import select
import signal
import socket
import statistics
import subprocess
import shutil
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


HTTP_APP = '''
import http.server, os, random, socket, signal
TABLE = bytes(range(256)) * (%(mib)d * 4096)
OBJECTS = {i: ("v%%d" %% i, i) for i in range(%(objects)d)}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self):
        pick = random.randrange
        n = sum(len(OBJECTS[pick(%(objects)d)][0]) for _ in range(%(touch)d))
        body = b"%%d\\n" %% (n + TABLE[pick(len(TABLE))])
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def serve():
    listener = socket.socket(fileno=3)
    listener.setblocking(False)  # the siblings accept from it too
    server = http.server.HTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
    server.socket = listener
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    server.timeout = 0.1
    if os.environ.get("NOTIFY_SOCKET"):  # loaded: ready (sd_notify)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as n:
            addr = os.environ["NOTIFY_SOCKET"]
            n.sendto(b"READY=1", "\\0" + addr[1:] if addr[0] == "@" else addr)
    while not stopping:
        server.handle_request()
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
    forks, replies = [], []
    for _ in range(a.workers):
        t0 = time.perf_counter()
        pid, reply = t.worker()
        forks.append(time.perf_counter() - t0)
        replies.append(reply)
        stop(pid)
    t.close()
    print(f"python app ({a.objects} objects, {a.table_mib} MiB table): fork-exec to first line "
          f"p50 {statistics.median(execs) * 1e3:.1f} ms p99 {pct(execs, 0.99) * 1e3:.1f} ms; "
          f"from the template p50 {statistics.median(forks) * 1e3:.1f} ms "
          f"p99 {pct(forks, 0.99) * 1e3:.1f} ms, of which the fork (request to reply) p50 "
          f"{statistics.median(replies) * 1e3:.1f} ms (the template loaded in {load:.2f} s)")


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


def pool_run(a, tmp, spawn, freeze):
    name = f"{spawn}{'' if freeze else '-nofreeze'}"
    d = tempfile.mkdtemp(prefix=name + "-", dir=tmp)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sock = os.path.join(d, "cowherd.sock")
    cfg = os.path.join(d, "cowherd.yaml")
    args = '"--preload", "httpapp", "--run", "httpapp:serve"' + ("" if freeze else ', "--no-freeze"')
    with open(cfg, "w") as f:
        f.write(f"""daemon:
  socket: {sock}
pools:
  web:
    command: ["/usr/bin/python3", "-m", "cowherd_template", {args}]
    spawn: {spawn}
    workers: {a.workers}
    ready: notify
    start_timeout: 120s
    sockets: [{{name: http, listen: "tcp://127.0.0.1:{port}"}}]
    env: {{PYTHONPATH: "{os.path.join(bl.ROOT, 'template')}:{tmp}"}}
""")
    ctl = [f"{BIN}/cowctl", "--socket", sock]
    daemon = bl.popen([f"{BIN}/cowherd", "-c", cfg], os.path.join(d, "cowherd.log"))

    def mem():
        _, rc, out = bl.run(ctl + ["--json", "mem", "web"], timeout=60)
        p = json.loads(out)["pools"][0]
        t = p["totals"]
        uss = [w["self"]["uss"] for w in p["workers"]
               if w["name"] != "web.template" and w.get("self")]
        return dict(footprint=t["footprint"] / 2**20, uss=statistics.median(uss) / 2**20,
                    saved=t["saved"] / 2**20, vs_exec=p.get("saved_vs_exec", 0) / 2**20)

    try:
        def running():
            _, rc, out = bl.run(ctl + ["--json", "status", "web"], timeout=10)
            return rc == 0 and sum(w["state"] == "running" for w in
                                   json.loads(out)["pools"][0]["workers"]) == a.workers
        if not bl.wait_until(running, 120, 0.2):
            raise RuntimeError(f"{name}: the pool did not come up (see {d}/cowherd.log)")
        before = mem()
        rate = a.requests / 20
        _, _, out = bl.run([f"{BIN}/bench_httpload", "127.0.0.1", str(port), "--connections",
                            str(a.workers), "--duration", "20", "--rate", str(rate), "--json"],
                           timeout=60)
        load = json.loads(out.strip().splitlines()[-1])
        after = mem()
        return name, before, after, load
    finally:
        bl.run(ctl + ["shutdown"], timeout=60)
        bl.terminate(daemon)
        shutil.rmtree(d, ignore_errors=True)


def pool(a, tmp):
    with open(os.path.join(tmp, "httpapp.py"), "w") as f:
        f.write(HTTP_APP % {"mib": a.table_mib, "objects": a.objects, "touch": a.touch})
    print(f"{a.workers} workers of one HTTP app ({a.table_mib} MiB table, {a.objects} objects, "
          f"{a.touch} objects read per request), MiB:")
    print(f"{'spawn':18} {'footprint':>9} {'USS/worker':>10} {'saved':>7} {'vs exec':>8}   "
          f"{'after requests':>14} {'footprint':>9} {'USS/worker':>10} {'eroded':>7}")
    for spawn, freeze in (("exec", True), ("template", True), ("template", False)):
        name, b, e, load = pool_run(a, tmp, spawn, freeze)
        print(f"{name:18} {b['footprint']:9.0f} {b['uss']:10.1f} {b['saved']:7.0f} "
              f"{b['vs_exec']:8.0f}   {load['ok']:6d} ok {load['failures']:3d} bad "
              f"{e['footprint']:9.0f} {e['uss']:10.1f} {e['footprint'] - b['footprint']:7.1f}",
              flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["fork", "ready", "footprint", "pool"])
    ap.add_argument("--sizes", default="64,256,1024")
    ap.add_argument("--forks", type=int, default=40)
    ap.add_argument("--workers", type=int)
    ap.add_argument("--objects", type=int, default=3000000)
    ap.add_argument("--table-mib", type=int, default=64)
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--touch", type=int, default=200,
                    help="pool: objects each request reads")
    ap.add_argument("--import-seconds", type=float, default=0.0,
                    help="CPU time the app's import spends besides building its data")
    a = ap.parse_args()
    if bl.libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit("cannot become a subreaper")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            if a.mode == "fork":
                fork_cost(a)
            elif a.mode == "pool":
                a.workers = a.workers or 8
                pool(a, tmp)
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
