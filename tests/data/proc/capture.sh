#!/bin/sh
# Regenerates the captured /proc files used by tests/unit/proc_*.cpp.
# The smaps/smaps_rollup pair comes from one SIGSTOPped `sleep`, read back to back by one
# process, so that sum(smaps) matches the rollup (no new mappers of shared pages in between).
# Values differ per capture: afterwards update the exact numbers asserted in
# tests/unit/proc_smaps_test.cpp and proc_reader_test.cpp, and rerun make_fakeroots.py.
set -eu
cd "$(dirname "$0")"
sleep 1000 &
pid=$!
sleep 0.2
kill -STOP "$pid"
python3 - "$pid" <<'PY'
import os, sys
pid = sys.argv[1]
def grab(name):
    fd = os.open(f"/proc/{pid}/{name}", os.O_RDONLY)
    data = b""
    while chunk := os.read(fd, 1 << 20):
        data += chunk
    os.close(fd)
    return data
files = {n: grab(n) for n in ("smaps_rollup", "smaps", "stat", "status")}
for name, data in files.items():
    with open(f"sleep.{name}", "wb") as f:
        f.write(data)
with open("sleep.exe", "w") as f:
    f.write(os.readlink(f"/proc/{pid}/exe") + "\n")
PY
kill -KILL "$pid"
cat /proc/self/smaps_rollup > self.smaps_rollup
