#!/usr/bin/env bash
# The DESIGN §7 suite side by side in one run: psg4j's native engines, reference and check (the C++
# bench driver built by Maven), psg4j bench (JMH, through the JVM) and, in Python, one batched backward,
# a bare microbatch loop, Opacus and torch.func. The suite is exported once (TorchScript models and
# inputs, seeded) so that psg4j and Python time identical weights and inputs; bench_python.py
# rebuilds its eager models with the export's seed and asserts their weights equal the exported ones.
# Rounds alternate so both sides see the same machine state.
#   src/test/python/bench_side_by_side.sh [PYTHON] [ROUNDS]    (PYTHON: one with torch and opacus)
set -euo pipefail
cd "$(dirname "$0")/../../.."
python=${1:-python3}
rounds=${2:-3}
java=${JAVA:-java}
driver=target/cmake/psg4j_selftest
jar=target/psg4j.jar
[ -x "$driver" ] && [ -f "$jar" ] || { echo "build first: mvn -B -q -DskipTests package" >&2; exit 2; }
models=$(mktemp -d "${TMPDIR:-/tmp}/psg4j-bench.XXXXXX")
trap 'rm -rf "$models"' EXIT
"$python" src/test/python/bench_python.py --suite all --batch 32 --export "$models" --export-only 2>/dev/null
echo "== suite exported to $models (B = 32)"
for round in $(seq "$rounds"); do
  echo "== round $round: psg4j native driver (C++-frontend models with the exported weights; <suite>-ts: the TorchScript models)"
  "$driver" bench --threads 1 --batch 32 --repeats 21 --models "$models"
  echo "== round $round: psg4j bench (JMH, exported models)"
  "$java" -jar "$jar" bench --models "$models" --threads 1 --batch 32
  echo "== round $round: Python (exported models, 1 thread, B = 32)"
  if ! "$python" src/test/python/bench_python.py --models "$models" --suite all --threads 1 --repeats 21 \
      --methods batched_backward,microbatch_loop,func_vmap,opacus_microbatch,opacus_check 2>"$models/python.log"; then
    cat "$models/python.log" >&2
    exit 1
  fi
done
