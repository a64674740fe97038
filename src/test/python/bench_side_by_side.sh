#!/usr/bin/env bash
# The DESIGN §7 suite side by side in one run, over a sweep of batch sizes: psg4j bench (JMH, through
# the JVM: vmap, microbatch, check-exact, check-sketch, probe, backward) and, in Python (bench_python.py),
# one batched backward, a bare microbatch loop, torch.func vmap(grad), Opacus's check and microbatch and,
# where jax is importable, JAX's jit(vmap(grad)) (checked equal to torch.func first). The suite is
# exported once (TorchScript models and one input per B, seeded) so that psg4j and Python time identical
# weights and inputs; bench_python.py rebuilds its eager models with the export's seed and asserts their
# weights equal the exported ones. Rounds alternate which side goes first, so both see the same machine
# state; bench_table.py prints the medians over rounds and their ratios.
#   src/test/python/bench_side_by_side.sh [PYTHON] [ROUNDS]    (PYTHON: one with torch and opacus)
# Environment: BATCHES (default 1,8,32,128,256), THREADS (1), JMH (psg4j bench's JMH options, default
# "--warmups 2 --iterations 3 --iteration-time 300"), REPEATS / BUDGET_MS (Python's calls per method and
# time budget per method, default 15 / 3000), METHODS (psg4j bench --methods, default all), KEEP (a folder
# to keep the exported suite and every round's JSON in).
set -euo pipefail
cd "$(dirname "$0")/../../.."
python=${1:-python3}
rounds=${2:-3}
java=${JAVA:-java}
batches=${BATCHES:-1,8,32,128,256}
threads=${THREADS:-1}
jmh=${JMH:---warmups 2 --iterations 3 --iteration-time 300}
methods=${METHODS:-vmap,microbatch,check-exact,check-sketch,probe,backward}
# bytedeco's OpenBLAS keeps a thread pool of its own that LibTorch's set_num_threads does not reach: without
# this, psg4j's "1 thread" GEMMs run on every core (on a loaded 2-core machine mlp's backward at B = 32 took
# 139 ms, 7 ms with it); the forked benchmark JVMs inherit it
export OPENBLAS_NUM_THREADS=$threads
jar=target/psg4j.jar
[ -f "$jar" ] || { echo "build first: mvn -B -q -DskipTests package" >&2; exit 2; }
if [ -n "${KEEP:-}" ]; then
  work=$KEEP; mkdir -p "$work"
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/psg4j-bench.XXXXXX")
  trap 'rm -rf "$work"' EXIT
fi
models=$work/models
"$python" src/test/python/bench_python.py --suite all --batch "$batches" --export "$models" --export-only 2>/dev/null
echo "== suite exported to $models (B = $batches), $threads thread(s), $rounds rounds"

psg4j_round() {
  echo "== round $1: psg4j bench (JMH, exported models)" >&2
  # shellcheck disable=SC2086  # $jmh is a list of options
  "$java" -jar "$jar" bench --models "$models" --batch "$batches" --threads "$threads" --methods "$methods" \
      --no-progress $jmh --json "$work/psg4j_$1.json" >"$work/psg4j_$1.txt"
}

python_methods=batched_backward,microbatch_loop,func_vmap,opacus_microbatch,opacus_check
if "$python" -c "import jax" 2>/dev/null; then
  python_methods=$python_methods,jax_vmap
else
  echo "note: jax is not importable by $python: no JAX column" >&2
fi

python_round() {
  echo "== round $1: Python (exported models)" >&2
  if ! "$python" src/test/python/bench_python.py --models "$models" --batch "$batches" --suite all \
      --threads "$threads" --repeats "${REPEATS:-15}" --budget-ms "${BUDGET_MS:-3000}" --methods "$python_methods" \
      >"$work/python_$1.json" 2>"$work/python_$1.log"; then
    cat "$work/python_$1.log" >&2
    exit 1
  fi
}

for round in $(seq "$rounds"); do
  if [ $((round % 2)) -eq 1 ]; then
    psg4j_round "$round"; python_round "$round"
  else
    python_round "$round"; psg4j_round "$round"
  fi
done
"$python" src/test/python/bench_table.py --psg4j "$work"/psg4j_*.json --python "$work"/python_*.json
