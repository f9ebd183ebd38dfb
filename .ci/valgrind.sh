#!/usr/bin/env bash
# Runs the turbowish-alloc stress test (turbowish-alloc/tests/stress.rs) under
# valgrind memcheck with a reduced operation count.
#
#   .ci/valgrind.sh                           # 100,000 ops per thread
#   TURBOWISH_STRESS_OPS=20000 .ci/valgrind.sh
#
# Exits non-zero if the test fails or memcheck reports any error.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

ops="${TURBOWISH_STRESS_OPS:-100000}"

if ! command -v valgrind >/dev/null 2>&1; then
    sudo=""
    if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
        sudo="sudo"
    fi
    $sudo apt-get update && $sudo apt-get install -y valgrind
fi

# Build the test binary and take its path from cargo's JSON messages.
bin="$(
    cargo test -p turbowish-alloc --test stress --no-run --message-format=json |
        python3 -c '
import json, sys
paths = set()
for line in sys.stdin:
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    target = msg.get("target") or {}
    if (msg.get("reason") == "compiler-artifact"
            and target.get("name") == "stress"
            and "test" in target.get("kind", [])
            and msg.get("executable")):
        paths.add(msg["executable"])
if len(paths) != 1:
    sys.exit("expected one stress test executable, found: %r" % sorted(paths))
print(paths.pop())
'
)"

echo "valgrind memcheck: $bin with TURBOWISH_STRESS_OPS=$ops" >&2
TURBOWISH_STRESS_OPS="$ops" valgrind --error-exitcode=1 --leak-check=no --fair-sched=yes \
    "$bin" --nocapture
