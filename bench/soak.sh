#!/bin/sh
# The chaos tests of tests/chaos, run long (by hand, never in CI; see bench/README.md).
#
#   bench/soak.sh [KILLS [SIGNALS [ROUNDS]]]     defaults: 10000 1000000 1000
#   SOAK_SEEDS="1 2 3 4 5" SOAK_STEPS=400 bench/soak.sh     the operator soak's seeds and length
#   SOAK_OPERATOR_ONLY=1 bench/soak.sh           only the operator soak
#   SOAK_SKIP=second_daemon,memory bench/soak.sh  step kinds or config features left out
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
# - the operator soak (tests/chaos/operator_soak_test.cpp): for each seed of SOAK_SEEDS,
#   SOAK_STEPS random operator and fault steps against one daemon (and its successors), every
#   invariant checked after every step; a violation is recorded, the daemon brought back in
#   line, and the run goes on. Prints the steps and violations of each seed and the total;
#   each seed's full output (steps, violations, the daemon's log lines) is kept in
#   $BUILD/soak-seed-SEED.log, with the command that replays it.
# Each test prints its figures; gtest reports a failed check. Needs root for the cgroups.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build/release}
SEEDS=${SOAK_SEEDS:-"1 2 3 4 5"}
STEPS=${SOAK_STEPS:-400}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target chaos_tests >/dev/null
status=0
if [ "${SOAK_OPERATOR_ONLY:-0}" = 0 ]; then
    COWHERD_SOAK_KILLS=${1:-10000} COWHERD_SOAK_SIGNALS=${2:-1000000} \
        COWHERD_SOAK_ROUNDS=${3:-1000} "$BUILD/bin/chaos_tests" \
        --gtest_filter='-OperatorSoak.*' || status=1
fi
total_steps=0
total_violations=0
for seed in $SEEDS; do
    out="$BUILD/soak-seed-$seed.log"
    COWHERD_SOAK_SEED=$seed COWHERD_SOAK_STEPS=$STEPS COWHERD_SOAK_KEEP_GOING=1 \
        COWHERD_SOAK_SKIP=${SOAK_SKIP:-} "$BUILD/bin/chaos_tests" \
        --gtest_filter='OperatorSoak.*' >"$out" 2>&1 || status=1
    # "operator soak: seed 1: 401 steps, 0 violations"
    line=$(grep '^operator soak: seed [0-9]*: ' "$out" | tail -n 1 || true)
    if [ -z "$line" ]; then
        echo "operator soak: seed $seed: no result (crashed?); see $out"
        status=1
        continue
    fi
    steps=$(echo "$line" | sed 's/.*: \([0-9]*\) steps.*/\1/')
    violations=$(echo "$line" | sed 's/.* \([0-9]*\) violations.*/\1/')
    total_steps=$((total_steps + steps))
    total_violations=$((total_violations + violations))
    echo "$line ($out)"
    if [ "$violations" -gt 0 ]; then
        grep '^\[soak seed' "$out" | sed 's/^/    /' | head -n 20
    fi
done
echo "operator soak: $total_steps steps, $total_violations violations (seeds: $SEEDS)"
exit $status
