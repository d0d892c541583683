#!/usr/bin/env python3
"""Regenerates fakeroot/ and fakeroot_nochildren/: tiny /proc trees for ProcReader tests.

Both hold the same processes; fakeroot_nochildren lacks task/*/children, as a kernel built
without CONFIG_PROC_CHILDREN does. Layout (pid: comm, ppid, notes):
  1    init          0
  2    kthreadd      0   PF_KTHREAD, empty cmdline
  100  cowherd       1   two threads: 100 forked 200 and 201, thread 101 forked 202
  200  "(a) (b)"   100   child 300
  201  "w 1"       100   zombie, empty cmdline
  202  worker      100   lists child 203, which has vanished
  205  stray         1   listed as 100's child (thread 101) but already reparented to 1
  300  grand       200
  500  loop-a      501   500 and 501 claim each other: impossible, guards must hold
  501  loop-b      500
"""
import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
PF_KTHREAD = 0x00200000

# pid: (comm, state, ppid, flags, starttime, cmdline, {tid: [children]})
PROCS = {
    1: ("init", "S", 0, 0x400100, 5, b"/sbin/init\0", {1: [100, 205]}),
    2: ("kthreadd", "S", 0, PF_KTHREAD | 0x8040, 6, b"", {2: []}),
    100: ("cowherd", "S", 1, 0x400100, 1000, b"/usr/bin/cowherd\0-c\0/etc/c.yaml\0",
          {100: [200, 201], 101: [202, 205]}),
    200: ("(a) (b)", "S", 100, 0x400100, 2000, b"python3\0-m\0app\0", {200: [300]}),
    201: ("w 1", "Z", 100, 0x40040c, 2001, b"", {201: []}),
    202: ("worker", "R", 100, 0x400000, 2002, b"worker\0--id=2\0", {202: [203]}),
    205: ("stray", "S", 1, 0x400000, 2005, b"stray\0", {205: []}),
    300: ("grand", "S", 200, 0x400000, 3000, b"grand\0child\0", {300: []}),
    500: ("loop-a", "S", 501, 0x400000, 5000, b"loop-a\0", {500: [501]}),
    501: ("loop-b", "S", 500, 0x400000, 5001, b"loop-b\0", {501: [500]}),
}


def stat_line(pid, comm, state, ppid, flags, start, threads):
    fields = [state, ppid, pid, pid, 0, -1, flags, 10, 0, 0, 0, 7, 3, 0, 0, 20, 0, threads, 0,
              start, 4096000, 250, 18446744073709551615] + [0] * 29
    return f"{pid} ({comm}) " + " ".join(str(f) for f in fields) + "\n"


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def build(root, with_children):
    shutil.rmtree(root, ignore_errors=True)
    for pid, (comm, state, ppid, flags, start, cmdline, tasks) in PROCS.items():
        base = os.path.join(root, str(pid))
        stat = stat_line(pid, comm, state, ppid, flags, start, len(tasks))
        write(os.path.join(base, "stat"), stat)
        write(os.path.join(base, "cmdline"), cmdline)
        for tid, kids in tasks.items():
            write(os.path.join(base, "task", str(tid), "stat"), stat)
            if with_children:
                write(os.path.join(base, "task", str(tid), "children"),
                      "".join(f"{k} " for k in kids))
    # Non-pid entries /proc also has, which all_pids() must ignore.
    write(os.path.join(root, "self"), "not a pid\n")
    write(os.path.join(root, "0x10", "stat"), "not a pid either\n")
    status = os.path.join(HERE, "sleep.status")
    shutil.copy(status, os.path.join(root, "100", "status"))
    shutil.copy(os.path.join(HERE, "sleep.smaps_rollup"), os.path.join(root, "100", "smaps_rollup"))
    shutil.copy(os.path.join(HERE, "sleep.smaps"), os.path.join(root, "100", "smaps"))
    write(os.path.join(root, "100", "smaps_rollup_garbage"), "not a rollup\n")


build(os.path.join(HERE, "fakeroot"), True)
build(os.path.join(HERE, "fakeroot_nochildren"), False)
