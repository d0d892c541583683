"""A small app for the template tests: a table and many objects built at import, shared by
every worker a template forks."""
import os
import signal
import sys
import threading

MIB = int(os.environ.get("TAPP_TABLE_MIB", "16"))
TABLE = bytes(range(256)) * (MIB * 4096)
OBJECTS = {i: str(i) for i in range(int(os.environ.get("TAPP_OBJECTS", "100000")))}
if os.environ.get("TAPP_HANDLERS"):  # what a template may leave set: none reaches a worker
    import faulthandler
    faulthandler.enable()  # C-level handlers Python's signal table does not know of
    signal.signal(signal.SIGUSR1, lambda *_: None)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})
if os.environ.get("TAPP_SAY"):  # what a template says while it loads
    print("out: " + os.environ["TAPP_SAY"], flush=True)
    print("err: " + os.environ["TAPP_SAY"], file=sys.stderr, flush=True)


def start_thread():
    threading.Thread(target=threading.Event().wait, daemon=True).start()


def main():
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    env = os.environ.get
    print("worker %s pid %d table %d MiB listen_pid %s template_fd %s"
          % (env("COWHERD_WORKER", "-"), os.getpid(), len(TABLE) >> 20, env("LISTEN_PID", "-"),
             env("COWHERD_TEMPLATE_FD", "-")), flush=True)
    signal.sigwait({signal.SIGTERM})
    return 0
