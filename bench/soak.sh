#!/bin/sh
# The chaos tests of tests/chaos, run long (by hand, never in CI; see bench/README.md).
#
#   bench/soak.sh [KILLS [SIGNALS [ROUNDS]]]     defaults: 10000 1000000 1000
#
# - kill storm: SIGKILL a random worker of a pool of 8 every ~3 ms until KILLS kills (and at
#   least 20 s); then exactly 8 running, 0 zombies, restarts == kills, fds unchanged, RSS
#   growth < 1 MiB after warm-up.
# - signal storm: SIGNALS signals (HUP with an unchanged config, USR1, WINCH in turn) while
#   workers are killed and their respawn timed; p99 death -> respawn < 100 ms, HUPs
#   coalesce, 0 spurious restarts.
# - bursts: a worker that forks 50 orphans and exits with them in the same instant, ROUNDS
#   times; every exit reaped once, 0 zombies.
# - the daemon SIGKILLed with 8 workers; its successor stops the leftovers (cgroup mode).
# Each test prints its figures; gtest reports a failed check. Needs root for the cgroups.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build/release}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target chaos_tests >/dev/null
COWHERD_SOAK_KILLS=${1:-10000} COWHERD_SOAK_SIGNALS=${2:-1000000} \
    COWHERD_SOAK_ROUNDS=${3:-1000} exec "$BUILD/bin/chaos_tests"
