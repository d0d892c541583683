"""Run a Python program as a cowherd template (`spawn: template`), standard library only.

    python3 -m cowherd_template --preload pkg.heavy [--preload ...] [--setup mod:fn]
                                [--no-freeze] --run pkg.app:main [-- ARG ...]

It imports each --preload module and calls --setup (what every worker should share: code,
tables, models), then runs gc.collect() and gc.freeze(), so that the collector never writes to
the shared objects (reference counting still does, a page at a time: `cowctl mem` shows the
erosion). Under cowherd's `spawn: template` it then tells cowherd it is ready and forks a
worker for each request; in each worker it calls the --run function with sys.argv set to
[target, ARG ...], and exits with what it returns. Without cowherd (COWHERD_TEMPLATE_FD unset)
it runs the function once, in this process: the same command works under `spawn: exec`.

A worker must be cowherd's child, not the template's, so that cowherd reaps it. On x86_64,
aarch64 and riscv64 a single-threaded template makes it with one clone(CLONE_PARENT), framed
by the steps os.fork() takes around its fork (PyOS_BeforeFork, PyOS_AfterFork_Child or
_Parent: Python's locks, threads and os.register_at_fork hooks); elsewhere, or when threads
are allowed (glibc's own at-fork steps then matter), it forks twice with os.fork() and the
middle process exits, so that the worker is reparented to cowherd, a subreaper. The one clone
costs half of the two forks, whose page-table copies are most of a spawn; what it skips is
glibc's own at-fork steps, so C libraries' pthread_atfork handlers do not run in the worker
(Python's do). COWHERD_TEMPLATE_CLONE=0 in the pool's env forks twice always. In a worker: its own session,
the signal dispositions a fresh Python has (SIGINT raises KeyboardInterrupt, SIGPIPE and SIGXFSZ
ignored, every other signal at its default) with none blocked, stdin on /dev/null, stdout and
stderr on cowherd's pipes, the pool's sockets at fds 3.. with LISTEN_FDS and LISTEN_PID, and
cowherd's variables in os.environ. The protocol is described in cowtemplate.h.

serve() is the same thing for a program that wants its own main: it returns False when not a
template, True in each worker, and never returns in the template.
"""

import argparse
import ctypes
import fcntl
import gc
import importlib
import os
import platform
import signal
import socket
import struct
import sys

__all__ = ["serve", "main"]

_MAX_MESSAGE = 64 * 1024
_MAX_FDS = 253
_FIXED_FDS = 3  # the go pipe, stdout, stderr


_CLONE_PARENT = 0x00008000
# Architectures whose clone(2) takes the flags first; the other arguments are all 0 (a fork's:
# the child runs on a copy of this stack), so their order does not matter.
_SYS_CLONE = {"x86_64": 56, "aarch64": 220, "riscv64": 220}


def _clone_api():
    nr = _SYS_CLONE.get(platform.machine())
    if nr is None or os.environ.get("COWHERD_TEMPLATE_CLONE") == "0":
        return None
    try:
        # PyDLL: the call keeps the GIL, as os.fork() does across fork().
        libc = ctypes.PyDLL(None, use_errno=True)
        api = ctypes.pythonapi
        return (nr, libc.syscall, api.PyOS_BeforeFork, api.PyOS_AfterFork_Child,
                api.PyOS_AfterFork_Parent)
    except (AttributeError, OSError):
        return None


_CLONE = _clone_api()


def _clone_parent():
    """One fork whose child is the template's parent's child: 0 in it, its pid here."""
    nr, syscall, before, after_child, after_parent = _CLONE
    zero = ctypes.c_long(0)
    before()
    pid = syscall(ctypes.c_long(nr), ctypes.c_long(_CLONE_PARENT | signal.SIGCHLD),
                  zero, zero, zero, zero)
    if pid == 0:
        after_child()
        return 0
    err = ctypes.get_errno()
    after_parent()
    if pid < 0:
        raise OSError(err, os.strerror(err))
    return pid


def _sigaction_api():
    # The handler is the struct's first member wherever glibc runs, but on MIPS.
    if platform.machine().startswith("mips"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.sigaction
    except (AttributeError, OSError):
        return None


_SIGACTION = _sigaction_api()


def _signals_to_reset():
    """The signals whose disposition is not SIG_DFL, asked of the kernel (a C extension may
    have set some behind Python's back, as faulthandler does): a worker resets only those.
    Asked in the template, before the fork: in a just-forked worker every call costs its
    copy-on-write faults, and resetting all 62 took 2 ms."""
    every = [s for s in signal.valid_signals() if s not in (signal.SIGKILL, signal.SIGSTOP)]
    if _SIGACTION is None:
        return every
    out = []
    old = ctypes.create_string_buffer(256)  # larger than any struct sigaction
    for sig in every:
        if _SIGACTION(sig, None, old) != 0 or ctypes.c_void_p.from_buffer(old).value:
            out.append(sig)
    return out


def _threads():
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


def _become_worker(sock, text, fds, reset):
    sock.close()
    os.setsid()
    for sig in reset:
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    # Every fd received out of the way of every target first (0.. and the sockets' 3..).
    floor = 3 + len(fds) - _FIXED_FDS
    high = [fcntl.fcntl(f, fcntl.F_DUPFD_CLOEXEC, floor) for f in fds]
    for f in fds:
        os.close(f)
    go, out, err, listen = high[0], high[1], high[2], high[_FIXED_FDS:]
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    if null != 0:
        os.close(null)
    os.dup2(out, 1)
    os.dup2(err, 2)
    os.close(out)
    os.close(err)
    for i, h in enumerate(listen):
        os.dup2(h, 3 + i)
        os.close(h)
    for line in text.split("\n")[1:]:
        key, eq, value = line.partition("=")
        if eq and key:
            os.environ[key] = value
    if listen:
        os.environ["LISTEN_PID"] = str(os.getpid())
    # Everything above is ready while cowherd registers the worker (and places it in its
    # cgroup); the program itself runs only after that: one byte says go, EOF says cancelled.
    if len(os.read(go, 1)) != 1:
        os._exit(0)
    os.close(go)


def _fork(sock, text, fds):
    """One request: True in the worker, False in the template."""
    head = text.split("\n", 1)[0]
    try:
        rid = int(head[5:])
    except ValueError:
        sock.send(b"failed 0 no request id")
        return False
    if len(fds) < _FIXED_FDS:
        sock.send(b"failed %d the request carried %d fds, not at least 3" % (rid, len(fds)))
        return False
    threads = _threads()
    if threads > 1 and os.environ.get("COWHERD_TEMPLATE_THREADS") != "allow":
        sock.send(b"failed %d the template has %d threads; a fork copies only the calling one, "
                  b"with whatever locks the others held (set template_threads: allow if this "
                  b"program forks safely)" % (rid, threads))
        return False
    reset = _signals_to_reset()
    # What the template printed must not be printed again by each worker.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    if _CLONE is not None and threads == 1:
        try:
            pid = _clone_parent()
        except OSError as e:
            sock.send(b"failed %d clone: %s" % (rid, e.strerror.encode()))
            return False
        if pid == 0:
            try:
                _become_worker(sock, text, fds, reset)
            except BaseException:
                os._exit(127)
            return True
        sock.send(b"forked %d %d" % (rid, pid))
        return False
    r, w = os.pipe()
    middle = os.fork()
    if middle == 0:
        # Forked twice: the middle process exits at once, so the worker is reparented to the
        # nearest subreaper, cowherd, and reaped by it like any worker.
        worker = -1
        try:
            os.close(r)
            try:
                worker = os.fork()
            except OSError as e:
                worker = -e.errno
            if worker != 0:
                os.write(w, struct.pack("i", worker))
        except BaseException:
            os._exit(1)
        if worker != 0:
            os._exit(0)
        try:
            os.close(w)
            _become_worker(sock, text, fds, reset)
        except BaseException:
            os._exit(127)
        return True
    os.close(w)
    try:
        got = os.read(r, 4)
    finally:
        os.close(r)
        os.waitpid(middle, 0)
    if len(got) != 4:
        sock.send(b"failed %d the forking process died" % rid)
    else:
        (pid,) = struct.unpack("i", got)
        if pid < 0:
            sock.send(b"failed %d fork: %s" % (rid, os.strerror(-pid).encode()))
        else:
            sock.send(b"forked %d %d" % (rid, pid))
    return False


def serve():
    """False when not a template; True in each worker; in the template it never returns."""
    fd = os.environ.pop("COWHERD_TEMPLATE_FD", None)
    if not fd:
        return False
    sock = socket.socket(fileno=int(fd))
    os.set_inheritable(sock.fileno(), False)
    sock.setblocking(True)  # we wait on it
    sock.send(b"ready")
    while True:
        msg, fds, _flags, _addr = socket.recv_fds(sock, _MAX_MESSAGE, _MAX_FDS,
                                                  socket.MSG_CMSG_CLOEXEC)
        if not msg:
            sys.exit(0)  # cowherd closed it: this generation is over
        text = msg.decode("utf-8", "replace")
        in_worker = False
        if text.startswith("fork "):
            in_worker = _fork(sock, text, fds)
        else:
            sock.send(b"failed 0 unknown request")
        if in_worker:
            return True
        for f in fds:
            os.close(f)


def _resolve(target):
    module, _, name = target.partition(":")
    obj = importlib.import_module(module)
    for part in (name or "main").split("."):
        obj = getattr(obj, part)
    return obj


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m cowherd_template",
                                 description="Run a Python program as a cowherd template.")
    ap.add_argument("--preload", action="append", default=[], metavar="MODULE",
                    help="import this in the template, shared by every worker (repeatable)")
    ap.add_argument("--setup", metavar="MODULE:FUNCTION",
                    help="call this in the template after the preloads")
    ap.add_argument("--no-freeze", action="store_true",
                    help="skip gc.freeze() (to measure what it saves)")
    ap.add_argument("--run", required=True, metavar="MODULE:FUNCTION",
                    help="the worker's entry point")
    ap.add_argument("args", nargs=argparse.REMAINDER, help="the worker's arguments, after --")
    a = ap.parse_args(argv)
    args = a.args[1:] if a.args[:1] == ["--"] else a.args
    for module in a.preload:
        importlib.import_module(module)
    if a.setup:
        _resolve(a.setup)()
    entry = _resolve(a.run)
    if not a.no_freeze:
        gc.collect()
        gc.freeze()
    serve()
    sys.argv = [a.run] + args
    result = entry()
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    main()
