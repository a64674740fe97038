#!/usr/bin/env bash
# The DESIGN §7 suite side by side in one run: psg4j's native reference and check (the C++ bench
# driver built by Maven) against one batched backward, a bare Python microbatch loop, Opacus and
# torch.func. Rounds alternate so both sides see the same machine state.
#   src/test/python/bench_side_by_side.sh [PYTHON] [ROUNDS]    (PYTHON: one with torch and opacus)
set -euo pipefail
cd "$(dirname "$0")/../../.."
python=${1:-python3}
rounds=${2:-3}
driver=target/cmake/psg4j_selftest
[ -x "$driver" ] || { echo "build first: mvn -B -q -DskipTests package" >&2; exit 2; }
for round in $(seq "$rounds"); do
  echo "== round $round: psg4j (native, 1 thread, B = 32)"
  "$driver" bench --threads 1 --batch 32 --repeats 15
  echo "== round $round: Python (1 thread, B = 32)"
  "$python" src/test/python/bench_python.py --suite all --batch 32 --threads 1 --repeats 15 \
      --methods batched_backward,microbatch_loop,func_vmap,opacus_microbatch,opacus_check 2>/dev/null
done
