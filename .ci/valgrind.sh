#!/usr/bin/env bash
# Runs the turbowish-alloc stress test (turbowish-alloc/tests/stress.rs) under
# valgrind memcheck with a reduced operation count, then the heap-walk tests
# (turbowish-alloc/tests/heap_walk.rs: views taken while threads churn; the
# million-block test and the malloc_trim test are left to the normal runs:
# under memcheck they take minutes and check sizes, not memory safety) and
# the sampling stress test for one second each, and the registry test of
# frees after a thread's exit hook (turbowish-alloc/tests/registry_exit_frees.rs).
#
#   .ci/valgrind.sh                           # 50,000 ops per thread
#   TURBOWISH_STRESS_OPS=20000 .ci/valgrind.sh
#
# Exits non-zero if the test fails or memcheck reports any error.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

ops="${TURBOWISH_STRESS_OPS:-50000}"

if ! command -v valgrind >/dev/null 2>&1; then
    sudo=""
    if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
        sudo="sudo"
    fi
    $sudo apt-get update && $sudo apt-get install -y valgrind
fi

# Builds test binary $1 and prints its path, from cargo's JSON messages.
test_binary() {
    cargo test -p turbowish-alloc --test "$1" --no-run --message-format=json |
        python3 -c '
import json, sys
name = sys.argv[1]
paths = set()
for line in sys.stdin:
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    target = msg.get("target") or {}
    if (msg.get("reason") == "compiler-artifact"
            and target.get("name") == name
            and "test" in target.get("kind", [])
            and msg.get("executable")):
        paths.add(msg["executable"])
if len(paths) != 1:
    sys.exit("expected one %s test executable, found: %r" % (name, sorted(paths)))
print(paths.pop())
' "$1"
}

bin="$(test_binary stress)"
echo "valgrind memcheck: $bin with TURBOWISH_STRESS_OPS=$ops" >&2
TURBOWISH_STRESS_OPS="$ops" valgrind --error-exitcode=1 --leak-check=no --fair-sched=yes \
    "$bin" --nocapture

bin="$(test_binary heap_walk)"
echo "valgrind memcheck: $bin with TURBOWISH_HEAP_WALK_SECS=1" >&2
TURBOWISH_HEAP_WALK_SECS=1 valgrind --error-exitcode=1 --leak-check=no --fair-sched=yes \
    "$bin" --test-threads 1 --skip a_million_live_blocks --skip a_large_drain_gives_memory_back

bin="$(test_binary sampling_stress)"
echo "valgrind memcheck: $bin with TURBOWISH_SAMPLING_SECS=1" >&2
TURBOWISH_SAMPLING_SECS=1 valgrind --error-exitcode=1 --leak-check=no --fair-sched=yes \
    "$bin"

bin="$(test_binary registry_exit_frees)"
echo "valgrind memcheck: $bin" >&2
valgrind --error-exitcode=1 --leak-check=no --fair-sched=yes "$bin"
