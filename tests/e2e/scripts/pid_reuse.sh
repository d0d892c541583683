#!/usr/bin/env bash
# Never signal a stranger (design §3.3), deterministically. Runs as PID 1 of a fresh pid
# namespace (unshare -p -f --mount-proc), where /proc/sys/kernel/ns_last_pid lets us hand a
# reaped worker's pid to a sentinel. Then stop, signal and restart must not touch it.
#   pid_reuse.sh BIN_DIR WORK_DIR KILL_MODE
set -u
bin=$1 dir=$2 mode=$3
sock=$dir/cowherd.sock
fail() {
    echo "FAIL: $*"
    ctl status --json
    tail -20 "$dir/daemon.log"
    exit 1
}
ctl() { "$bin/cowctl" --socket "$sock" "$@"; }
# The worker's own pid (null while it has no process, so never some other "pid" field).
worker_pid() {
    ctl status web.0 --json | grep -o '"name":"web.0","index":0,"pid":[0-9]*' | grep -o '[0-9]*$'
}
restarts() { ctl status web.0 --json | grep -o '"restarts":[0-9]*' | head -1 | cut -d: -f2; }
wait_for() {  # wait_for CMD...: up to 10 s; CMD is re-run each time, so pass a function
    for _ in $(seq 1 1000); do "$@" && return 0; sleep 0.01; done
    return 1
}
alive() { [ -e "/proc/$1" ] && ! grep -q '^[0-9]* (.*) Z' "/proc/$1/stat" 2>/dev/null; }

cat > "$dir/cowherd.yaml" <<YAML
daemon:
  socket: $sock
pools:
  web:
    command: [sleep, "100000"]
    start_timeout: 0s
    kill_mode: $mode
YAML
"$bin/cowherd" -c "$dir/cowherd.yaml" > "$dir/daemon.log" 2>&1 &
daemon=$!
trap 'kill -TERM $daemon 2>/dev/null; wait $daemon 2>/dev/null' EXIT
wait_for ctl version >/dev/null 2>&1 || fail "daemon did not come up"
has_worker() { [ -n "$(worker_pid)" ]; }
replaced() { [ "$(restarts)" = 1 ]; }
wait_for has_worker || fail "no worker"
old=$(worker_pid)

kill -KILL "$old"
wait_for replaced || fail "worker was not replaced"
[ "$(worker_pid)" != "$old" ] || fail "replacement reused the pid"

# Hand the old pid to a sentinel that leads its own session and group, as a worker would.
echo $((old - 1)) > /proc/sys/kernel/ns_last_pid
setsid sleep 100000 &
sentinel=$!
[ "$sentinel" = "$old" ] || fail "sentinel got pid $sentinel, wanted $old"
wait_for grep -q "^$old (sleep)" /proc/$old/stat || fail "sentinel is not what we think"

ctl signal HUP web >/dev/null || fail "signal"
ctl signal --tree USR1 web >/dev/null || fail "signal --tree"
alive "$sentinel" || fail "signal reached the sentinel"
ctl restart web >/dev/null || fail "restart"
alive "$sentinel" || fail "restart reached the sentinel"
ctl stop web >/dev/null || fail "stop"
alive "$sentinel" || fail "stop reached the sentinel"
ctl start web >/dev/null || fail "start"
ctl shutdown >/dev/null || fail "shutdown"
wait $daemon
rc=$?
trap - EXIT
alive "$sentinel" || fail "shutdown reached the sentinel"
[ $rc = 0 ] || fail "daemon exited $rc"
kill -KILL "$sentinel"
echo "OK: pid $old reused by the sentinel; stop/signal/restart/shutdown left it alone ($mode)"
