#!/usr/bin/env python3
"""Log capture throughput: cowherd beside supervisord and PM2, one flooding worker to files.

Run by hand, never in CI. Method and results are in bench/README.md. Python 3
standard library only.

    python3 bench/logs.py [--runs 3] [--lines 2000000] [--payload 100] [--batch 1]
                          [--pregen] [--dir /dev/shm] [--systems direct,cowherd,supervisord,pm2]

One worker, `flood N --payload 100` (tests/helpers/flood.cpp), writes N numbered, checksummed
lines as fast as it can, alternating stdout and stderr (one write(2) per line), then exits. Its
supervisor captures both streams into two files; the worker is never restarted and the files
never rotate (cowherd `max_size: 0`, supervisord `*_logfile_maxbytes=0`, PM2 without
pm2-logrotate), so each stream is one file.

  direct       no supervisor: flood's stdout and stderr opened on the two files (the ceiling)
  cowherd      `stdout: {sink: file, max_size: 0}` (and stderr) under `daemon.log_dir`
  supervisord  `[program:flood]` with stdout_logfile / stderr_logfile, maxbytes=0
  pm2          `pm2 start flood --interpreter none --no-autorestart --output F --error F`

Figures per run: the wall time from the launch of the daemon (for PM2, of the `pm2 start` that
launches its God daemon) until the two files hold all N lines (watched by reading what is new in
them every 10 ms and counting newlines), and also from the first byte in the files to the last
line; MB/s (10^6 bytes of both files) and lines/s over the first; the daemon's CPU time
(utime+stime of its own process from /proc/PID/stat, clock ticks -> s) per MB; its peak RSS; and,
once the system is stopped, every line checked: tag, sequence number (each stream's 0..N/2-1 once,
in order) and FNV-1a checksum of "seq payload". Lost = lines never found intact. When lines go
missing, the wall time is until the files stopped growing after the worker exited.

With --pregen, flood formats all its lines before its first write (formatting and checksums
cost more than the writes: without it the writer, not the capture, is the bottleneck at about
350 MB/s), announces the two files' final sizes, and the script watches the sizes by stat alone;
MB/s and lines/s are then over first byte -> done, the capture's own speed. --dir /dev/shm keeps
the disk's writeback, which varies a lot between runs on a VM, out of the figure.

Every process the benchmark starts carries COWBENCH_TAG=<random> in its environment; on the way
out the script kills, by pid, whatever still carries the tag. Before each measurement it waits
until no `bench/spawn.py` is running, so two benchmarks never share the cores.
"""

import argparse
import concurrent.futures
import datetime
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
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
POOL = "flood"

def flood_alive():
    """Whether a flood process of ours is still running."""
    for pid in tagged_pids():
        st = proc_stat(pid)
        if st and st[0] == "flood" and st[1] != "Z":
            return True
    return False


# ---------------------------------------------------------------- watching the files


class Watcher:
    """Counts the newlines in files as they grow, reading only what is new each poll."""

    def __init__(self, paths, n):
        self.paths, self.n = paths, n
        self.files = {p: None for p in paths}
        self.lines = {p: 0 for p in paths}
        self.bytes = {p: 0 for p in paths}

    def poll(self):
        """(lines, bytes) in the files so far."""
        for p in self.paths:
            f = self.files[p]
            if f is None:
                try:
                    f = self.files[p] = open(p, "rb", buffering=0)
                except FileNotFoundError:
                    continue
            while True:
                b = f.read(1 << 22)
                if not b:
                    break
                self.lines[p] += b.count(b"\n")
                self.bytes[p] += len(b)
        return sum(self.lines.values()), sum(self.bytes.values())

    def done(self, lines, nbytes):
        return lines >= self.n

    def progress(self, lines, nbytes):
        return f"{lines} of {self.n} lines"

    def close(self):
        for f in self.files.values():
            if f is not None:
                f.close()


class SizeWatcher:
    """With --pregen: the files' sizes against the totals flood announced, by stat alone, so
    that watching costs no CPU beside a writer that may run at GB/s. The lines are counted
    afterwards, by the check."""

    def __init__(self, paths, sizes_path):
        self.paths, self.sizes_path, self.expect = paths, sizes_path, None

    def poll(self):
        """(None, bytes in the files so far)."""
        if self.expect is None:
            try:
                self.expect = sum(int(v) for v in open(self.sizes_path).read().split())
            except (OSError, ValueError):
                pass
        total = 0
        for p in self.paths:
            try:
                total += os.stat(p).st_size
            except FileNotFoundError:
                pass
        return None, total

    def done(self, lines, nbytes):
        return self.expect is not None and nbytes >= self.expect

    def progress(self, lines, nbytes):
        return f"{nbytes} of {self.expect} bytes"

    def close(self):
        pass


def watch(paths, n, t_launch, args, daemon_pid_fn, d):
    """Poll until the files hold n lines (with --pregen: the bytes flood announced), or
    stopped growing after flood exited.

    Returns timing figures and the daemon's CPU ticks / peak RSS at that moment."""
    # A stat is cheap and a --pregen transfer short: poll it more often.
    w, poll_ms = ((SizeWatcher(paths, os.path.join(d, "sizes")), min(args.poll_ms, 2))
                  if args.pregen else (Watcher(paths, n), args.poll_ms))
    first_byte = last_growth = None
    seen_lines, seen_bytes = 0, 0
    deadline = t_launch + args.timeout
    stalled_check = 0.0
    try:
        while True:
            lines, nbytes = w.poll()
            now = time.monotonic()
            if nbytes > seen_bytes:
                if first_byte is None:
                    first_byte = now
                last_growth = now
                seen_lines, seen_bytes = lines, nbytes
            if w.done(lines, nbytes):
                break
            if now > deadline:
                log(f"  timeout: {w.progress(lines, nbytes)} after {args.timeout}s")
                break
            if last_growth is not None and now - last_growth > args.settle and \
                    now - stalled_check > 1:
                stalled_check = now
                if not flood_alive():
                    log(f"  the files stopped at {w.progress(lines, nbytes)} after the worker "
                        "exited")
                    break
            time.sleep(poll_ms / 1000)
    finally:
        w.close()
    dpid = daemon_pid_fn()
    st = proc_stat(dpid) if dpid else None
    end = last_growth if last_growth is not None else time.monotonic()
    return {
        "wall_s": end - t_launch,
        "first_byte_s": (first_byte - t_launch) if first_byte else None,
        "stream_s": (end - first_byte) if first_byte else None,
        "bytes": seen_bytes,
        "lines_counted": seen_lines,
        "daemon_cpu_s": st[3] / CLK_TCK if st else None,
        "daemon_hwm_mib": (vm_hwm_kib(dpid) / 1024 if dpid and vm_hwm_kib(dpid) else None),
    }


# ---------------------------------------------------------------- checking every line


def fnv32(b):
    h = 2166136261
    for c in b:
        h = ((h ^ c) * 16777619) & 0xFFFFFFFF
    return h


def check_file(path, tag, expect):
    """Every line of one stream: (good, lost, bad, duplicate, out_of_order, other)."""
    good = bad = dup = ooo = other = 0
    seen = bytearray(expect)
    nxt = 0
    prefix = tag + b" "
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return {"good": 0, "lost": expect, "bad": 0, "dup": 0, "out_of_order": 0, "other": 0}
    with f:
        for line in f:
            if not line.startswith(prefix):
                other += 1  # not a line of this stream at all
                continue
            if not line.endswith(b"\n"):
                bad += 1  # a torn last line
                continue
            parts = line[2:-1].split(b" ")
            if len(parts) != 3 or not parts[0].isdigit() or not parts[2].isdigit():
                bad += 1
                continue
            seq = int(parts[0])
            if fnv32(parts[0] + b" " + parts[1]) != int(parts[2]) or seq >= expect:
                bad += 1
                continue
            if seen[seq]:
                dup += 1
                continue
            seen[seq] = 1
            if seq != nxt:
                ooo += 1
            nxt = seq + 1
            good += 1
    return {"good": good, "lost": expect - good, "bad": bad, "dup": dup, "out_of_order": ooo,
            "other": other}


def check_all(out_path, err_path, n, pool):
    fo = pool.submit(check_file, out_path, b"o", (n + 1) // 2)
    fe = pool.submit(check_file, err_path, b"e", n // 2)
    o, e = fo.result(), fe.result()
    return {k: o[k] + e[k] for k in o}


# ---------------------------------------------------------------- systems


def flood_argv(bins, args, d):
    argv = [bins["flood"], str(args.lines), "--payload", str(args.payload),
            "--batch", str(args.batch)]
    if args.pregen:
        argv += ["--pregen", "--sizes", os.path.join(d, "sizes")]
    return argv


def direct_run(args, bins, d):
    out, err = os.path.join(d, "flood.out"), os.path.join(d, "flood.err")
    fo, fe = open(out, "wb"), open(err, "wb")
    t = time.monotonic()
    p = subprocess.Popen(flood_argv(bins, args, d), stdin=subprocess.DEVNULL, stdout=fo, stderr=fe,
                         env=bench_env())
    tracked.add(p.pid)
    fo.close()
    fe.close()
    try:
        r = watch([out, err], args.lines, t, args, lambda: None, d)
        p.wait(60)
    finally:
        terminate(p)
    return r, out, err, {}


def cowherd_run(args, bins, d):
    logs = os.path.join(d, "logs")
    sock = os.path.join(d, "cowherd.sock")
    cfg = os.path.join(d, "cowherd.yaml")
    argv = ", ".join(f'"{a}"' for a in flood_argv(bins, args, d))
    with open(cfg, "w") as f:
        f.write(f"""daemon:
  socket: {sock}
  log_dir: {logs}
  shutdown_timeout: 10s
pools:
  {POOL}:
    command: [{argv}]
    restart: never
    start_timeout: 0s
    stdout: {{sink: file, max_size: 0}}
    stderr: {{sink: file, max_size: 0}}
  idle:  # keeps the daemon up once flood is done (else it exits), for its peak RSS
    command: [sleep, "100000"]
""")
    ctl = [bins["cowctl"], "--socket", sock]
    t = time.monotonic()
    daemon = popen([bins["cowherd"], "-c", cfg], os.path.join(d, "cowherd.log"))
    out, err = os.path.join(logs, f"{POOL}.out"), os.path.join(logs, f"{POOL}.err")
    extra = {}
    try:
        r = watch([out, err], args.lines, t, args, lambda: daemon.pid, d)
        _, rc, o = run(ctl + ["--json", "status", POOL], timeout=10)
        if rc == 0:
            lg = json.loads(o)["pools"][0].get("log", {})
            extra = {"captured_lines": (lg.get("stdout_lines", 0) or 0) +
                     (lg.get("stderr_lines", 0) or 0),
                     "dropped_lines": lg.get("dropped_lines")}
        run(ctl + ["shutdown"], timeout=30)
        daemon.wait(30)
    finally:
        terminate(daemon)
    return r, out, err, extra


def supervisord_run(args, bins, d):
    logs = os.path.join(d, "logs")
    os.makedirs(logs)
    out, err = os.path.join(logs, f"{POOL}.out"), os.path.join(logs, f"{POOL}.err")
    conf = os.path.join(d, "supervisord.conf")
    with open(conf, "w") as f:
        f.write(f"""[unix_http_server]
file={d}/supervisor.sock

[supervisord]
nodaemon=true
logfile={d}/supervisord.log
pidfile={d}/supervisord.pid
childlogdir={d}

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{d}/supervisor.sock

[program:{POOL}]
command={' '.join(flood_argv(bins, args, d))}
autostart=true
autorestart=false
startsecs=0
stdout_logfile={out}
stderr_logfile={err}
stdout_logfile_maxbytes=0
stderr_logfile_maxbytes=0
stdout_logfile_backups=0
stderr_logfile_backups=0
""")
    t = time.monotonic()
    daemon = popen([bins["supervisord"], "-n", "-c", conf], os.path.join(d, "supervisord.out"))
    try:
        r = watch([out, err], args.lines, t, args, lambda: daemon.pid, d)
    finally:
        terminate(daemon)
    return r, out, err, {}


def pm2_run(args, bins, d):
    logs = os.path.join(d, "logs")
    os.makedirs(logs)
    out, err = os.path.join(logs, f"{POOL}.out"), os.path.join(logs, f"{POOL}.err")
    home = os.path.join(d, "home")
    env = bench_env({"PM2_HOME": home})
    fl = flood_argv(bins, args, d)
    t = time.monotonic()
    cli = popen([bins["pm2"], "start", fl[0], "--name", POOL, "--interpreter", "none",
                 "--no-autorestart", "--output", out, "--error", err, "--", *fl[1:]],
                os.path.join(d, "pm2-cli.log"), env=env)
    pidfile = os.path.join(home, "pm2.pid")
    god = []

    def god_pid():
        if not god:
            try:
                god.append(int(open(pidfile).read().strip()))
            except (OSError, ValueError):
                return None
        return god[0]

    try:
        r = watch([out, err], args.lines, t, args, god_pid, d)
        cli.wait(60)
    finally:
        terminate(cli)
        run([bins["pm2"], "kill"], env=env, timeout=120)
    return r, out, err, {}


SYSTEMS = {"direct": direct_run, "cowherd": cowherd_run, "supervisord": supervisord_run,
           "pm2": pm2_run}


# ---------------------------------------------------------------- report


COLUMNS = [
    ("wall s", lambda r: r["wall_s"], "{:.2f}"),
    ("MB/s", lambda r: r["mb_s"], "{:.1f}"),
    ("lines/s", lambda r: r["lines_s"], "{:,.0f}"),
    ("1st byte->done s", lambda r: r["stream_s"], "{:.2f}"),
    ("daemon CPU s", lambda r: r["daemon_cpu_s"], "{:.2f}"),
    ("CPU ms/MB", lambda r: r["cpu_ms_per_mb"], "{:.2f}"),
    ("peak RSS MiB", lambda r: r["daemon_hwm_mib"], "{:.0f}"),
    ("lost", lambda r: r["check"]["lost"], "{:,}"),
    ("bad/dup/ooo", lambda r: "{}/{}/{}".format(r["check"]["bad"], r["check"]["dup"],
                                               r["check"]["out_of_order"]), "{}"),
    ("other CPU", lambda r: 100 * r["foreign_cpu"], "{:.0f}%"),
]


def fmt(v, how):
    return "-" if v is None else how.format(v)


def render(runs, systems):
    hdr = ["system", "run"] + [c[0] for c in COLUMNS]
    rows = []
    for name in systems:
        mine = [r for r in runs if r["system"] == name]
        for r in mine:
            rows.append([name, str(r["run"])] + [fmt(get(r), how) for _, get, how in COLUMNS])
        if mine:
            med = []
            for _, get, how in COLUMNS:
                vals = [get(r) for r in mine if get(r) is not None]
                if vals and all(isinstance(v, (int, float)) for v in vals):
                    med.append(fmt(statistics.median(vals), how))
                else:
                    med.append("")
            rows.append([name, "median"] + med)
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(hdr)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(hdr, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--lines", type=int, default=2_000_000)
    ap.add_argument("--payload", type=int, default=100)
    ap.add_argument("--batch", type=int, default=1,
                    help="lines per write(2) of the flooding worker (1: one write per line)")
    ap.add_argument("--pregen", action="store_true",
                    help="flood formats every line before its first write, and MB/s and "
                         "lines/s are over first byte -> done: the capture's speed, not the "
                         "writer's")
    ap.add_argument("--systems", default="direct,cowherd,supervisord,pm2")
    ap.add_argument("--dir", default=None,
                    help="where the log files go (default: $TMPDIR or /tmp); /dev/shm takes "
                         "the disk's writeback, which varies from run to run, out of the figure")
    ap.add_argument("--poll-ms", type=float, default=10)
    ap.add_argument("--settle", type=float, default=3,
                    help="seconds without growth, after the worker exited, that end a run")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per run at most")
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

    bins = {b: os.path.join(args.bin_dir, b) for b in ("cowherd", "cowctl", "flood")}
    for b, path in bins.items():
        if not os.access(path, os.X_OK):
            sys.exit(f"missing {path}: build first (cmake --build build/release)")
    bins["supervisord"] = shutil.which("supervisord")
    bins["pm2"] = shutil.which("pm2")
    systems = [s for s in args.systems.split(",") if s]
    for s in systems:
        if s not in SYSTEMS:
            sys.exit(f"unknown system {s}")
    for s in ("supervisord", "pm2"):
        if s in systems and not bins[s]:
            log(f"{s} not installed: skipped")
            systems.remove(s)

    def interrupted(signo, _frame):
        raise KeyboardInterrupt(signo)

    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    PR_SET_CHILD_SUBREAPER = 36
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    tmp = tempfile.mkdtemp(prefix="cowbench-logs-", dir=args.dir)
    started = datetime.datetime.now(datetime.timezone.utc)
    runs = []
    checker = concurrent.futures.ProcessPoolExecutor(max_workers=2)
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
                    d = tempfile.mkdtemp(prefix=name + "-", dir=tmp)
                    try:
                        cont = Contention()
                        r, out, err, extra = SYSTEMS[name](args, bins, d)
                        sweep(name)
                        r["foreign_cpu"], r["attempt"] = cont.end(), attempt + 1
                        r.update(extra)
                        r["system"], r["run"], r["cpu_busy_before"] = name, i + 1, busy
                        others = other_benchmark(args)
                        redo = (r["foreign_cpu"] > args.max_foreign or others) and \
                            attempt < args.retries
                        if redo:
                            log(f"  other work ran meanwhile ({100 * r['foreign_cpu']:.0f}% of "
                                f"the CPUs{', ' + args.wait_for if others else ''}); again")
                        else:
                            r["check"] = check_all(out, err, args.lines, checker)
                    finally:
                        sweep(name)
                        if not args.keep:
                            shutil.rmtree(d, ignore_errors=True)
                    if not redo:
                        break
                mb = r["bytes"] / 1e6
                r["mb"] = mb
                # --pregen: over the capture alone, since the wall time then includes the
                # seconds flood spends formatting before its first write.
                span = r["stream_s"] if args.pregen else r["wall_s"]
                r["mb_s"] = mb / span if span else None
                r["lines_s"] = r["check"]["good"] / span if span else None
                r["cpu_ms_per_mb"] = (1000 * r["daemon_cpu_s"] / mb
                                      if r["daemon_cpu_s"] is not None and mb else None)
                runs.append(r)
                log(f"  {r['wall_s']:.2f} s, {r['mb_s']:.1f} MB/s, daemon CPU "
                    f"{r['daemon_cpu_s']} s, lost {r['check']['lost']}, "
                    f"bad {r['check']['bad']}, dup {r['check']['dup']}")
    except KeyboardInterrupt:
        log("interrupted")
    finally:
        checker.shutdown(cancel_futures=True)
        sweep("the benchmark")
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            log(f"kept {tmp}")
    if not runs:
        sys.exit(1)
    m = machine()
    mb = statistics.median([r["mb"] for r in runs])
    print(f"# log capture throughput: {started:%Y-%m-%d %H:%M} UTC, kernel {m['kernel']}, "
          f"{m['cpus']} CPUs ({m['cpu']})")
    print(f"# flood {args.lines:,} lines --payload {args.payload} --batch {args.batch}"
          f"{' --pregen (MB/s over first byte -> done)' if args.pregen else ''} "
          f"({mb:.1f} MB over stdout and "
          f"stderr) to two files, no rotation; {args.runs} runs")
    print(render(runs, systems))
    med = {}
    for name in systems:
        v = [r["mb_s"] for r in runs if r["system"] == name and r["mb_s"]]
        if v:
            med[name] = statistics.median(v)
    print()
    for peer in ("supervisord", "pm2"):
        if "cowherd" in med and peer in med:
            print(f"throughput cowherd / {peer}: {med['cowherd'] / med[peer]:.1f}x "
                  f"(median MB/s {med['cowherd']:.1f} vs {med[peer]:.1f})")
    if "direct" in med and "cowherd" in med:
        print(f"cowherd / direct-to-file: {med['cowherd'] / med['direct']:.2f}x")
    lost = {name: sum(r["check"]["lost"] for r in runs if r["system"] == name)
            for name in systems}
    print("lines lost over all runs: " + ", ".join(f"{k} {v:,}" for k, v in lost.items()))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"started": started.isoformat(), "machine": m, "args": vars(args),
                       "binaries": bin_info,
                       "runs": runs}, f, indent=1)


if __name__ == "__main__":
    main()
