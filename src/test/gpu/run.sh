#!/usr/bin/env bash
# Builds psg4j's native core and self-test against this machine's Python torch and runs them on
# CUDA in one go: no Java, no package registry, only python3 + torch, CMake and g++.
#   bash src/test/gpu/run.sh [--device cuda|cpu] [--batches 32,256] [--repeats 5] [--jobs 16]
#                            [--build-dir DIR] [--python python3] [--configure-only]
# Prints the self-test's "N passed, M failed", the bench table and a summary; exit status 1 if any
# self-test failed (or the build did), 3 if something it needs is missing (it says what).
set -uo pipefail

DEVICE=cuda
BATCHES=32,256
REPEATS=5
JOBS=16
PYTHON=python3
BUILD_DIR=${TMPDIR:-/tmp}/psg4j-gpu-build
CONFIGURE_ONLY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=$2; shift 2 ;;
    --batches) BATCHES=$2; shift 2 ;;
    --repeats) REPEATS=$2; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    --build-dir) BUILD_DIR=$2; shift 2 ;;
    --python) PYTHON=$2; shift 2 ;;
    --configure-only) CONFIGURE_ONLY=1; shift ;;
    *) echo "usage: $0 [--device cuda|cpu] [--batches 32,256] [--repeats R] [--jobs N] [--build-dir DIR] [--python PY]" >&2; exit 2 ;;
  esac
done

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SOURCE=$(cd "$HERE/../../main/cpp" && pwd)
START=$(date +%s)
missing() { echo "run.sh: MISSING: $*" >&2; exit 3; }
step() { echo "== $* ($(( $(date +%s) - START )) s)"; }

# ---- torch, as this Python sees it ----
command -v cmake >/dev/null || missing "cmake (the build needs CMake >= 3.18)"
command -v g++ >/dev/null || missing "g++ (the build needs a C++17 compiler)"
TORCH_INFO=$("$PYTHON" - <<'PY'
import os, sys
try:
    import torch
except Exception as e:
    print("ERROR torch does not import: %s" % e); sys.exit(0)
root = os.path.dirname(torch.__file__)
print("VERSION", torch.__version__.split("+")[0])
print("CUDA", torch.version.cuda or "none")
print("ROOT", root)
print("PREFIX", torch.utils.cmake_prefix_path)
print("ABI", int(torch._C._GLIBCXX_USE_CXX11_ABI))
print("DEVICES", torch.cuda.device_count() if torch.cuda.is_available() else 0)
site = os.path.dirname(root)
for sub in ("nvidia/cu13", "nvidia/cuda_runtime", "nvidia/cu12"):
    d = os.path.join(site, sub)
    if os.path.exists(os.path.join(d, "include", "cuda_runtime_api.h")):
        print("CUDART", d); break
PY
)
case "$TORCH_INFO" in ERROR*) missing "${TORCH_INFO#ERROR }" ;; esac
field() { echo "$TORCH_INFO" | awk -v k="$1" '$1 == k { $1 = ""; sub(/^ /, ""); print }'; }
TORCH_VERSION=$(field VERSION); TORCH_ROOT=$(field ROOT); TORCH_ABI=$(field ABI)
TORCH_CUDA=$(field CUDA); VISIBLE=$(field DEVICES); CUDART_ROOT=$(field CUDART)
echo "torch $TORCH_VERSION (CUDA $TORCH_CUDA) at $TORCH_ROOT; $VISIBLE CUDA device(s) visible"
"$PYTHON" -c "import sys; v=tuple(int(x) for x in '$TORCH_VERSION'.split('.')[:2]); sys.exit(0 if v >= (2, 10) else 1)" \
  || missing "torch >= 2.10 (this Python has $TORCH_VERSION)"
[ "$TORCH_ABI" = 1 ] || missing "a torch built with the C++11 ABI (cmake/TorchFromDir.cmake assumes it)"
[ -f "$TORCH_ROOT/include/torch/csrc/api/include/torch/torch.h" ] || missing "torch's C++ headers in $TORCH_ROOT/include"
[ -f "$TORCH_ROOT/lib/libtorch_cpu.so" ] || missing "libtorch_cpu.so in $TORCH_ROOT/lib"

# ---- CUDA's runtime headers: graphs and the sync-count check need them; streams do not ----
CUDA_ARGS=(-DPSG4J_WITH_CUDA=OFF)
CUDA_NOTE="off (no CUDA torch)"
if [ "$TORCH_CUDA" != none ]; then
  CUDA_INCLUDE=""
  for d in "${CUDART_ROOT:+$CUDART_ROOT/include}" "${CUDA_HOME:+$CUDA_HOME/include}" /usr/local/cuda/include; do
    if [ -n "$d" ] && [ -f "$d/cuda_runtime_api.h" ] && [ -f "$d/crt/host_config.h" ]; then CUDA_INCLUDE=$d; break; fi
  done
  if [ -n "$CUDA_INCLUDE" ]; then
    CUDA_LIB=""
    for d in "$CUDA_INCLUDE/../lib" "$CUDA_INCLUDE/../lib64" "$TORCH_ROOT/lib"; do
      if ls "$d"/libcudart.so* >/dev/null 2>&1; then CUDA_LIB=$(cd "$d" && pwd); break; fi
    done
    if [ -n "$CUDA_LIB" ]; then
      CUDA_ARGS=(-DPSG4J_WITH_CUDA=ON -DPSG4J_CUDA_INCLUDE_DIR="$CUDA_INCLUDE" -DPSG4J_CUDA_LIB_DIR="$CUDA_LIB")
      CUDA_NOTE="on ($CUDA_INCLUDE)"
    else
      CUDA_NOTE="off: cuda_runtime_api.h found in $CUDA_INCLUDE but no libcudart.so* beside it"
    fi
  else
    CUDA_NOTE="off: no cuda_runtime_api.h with crt/host_config.h (nvidia-cuda-runtime and nvidia-cuda-crt, or a toolkit): CUDA graphs and the sync-count check are not built, streams still run"
  fi
fi
echo "CUDA headers: $CUDA_NOTE"

# ---- nlohmann/json.hpp (ATen/functorch/Interpreter.h includes it; torch's wheel may not ship it) ----
NLOHMANN=""
for d in ${PSG4J_NLOHMANN_DIR:+"$PSG4J_NLOHMANN_DIR"} "$TORCH_ROOT/include" /usr/include /usr/local/include "$HOME/.cache/psg4j/libtorch-2.10.0/include"; do
  if [ -f "$d/nlohmann/json.hpp" ]; then NLOHMANN=$d; break; fi
done
if [ -z "$NLOHMANN" ]; then
  NLOHMANN=$("$PYTHON" -c "
import glob, os, site, sys
for base in site.getsitepackages() + [site.getusersitepackages()]:
    for hit in glob.glob(os.path.join(base, '**', 'nlohmann', 'json.hpp'), recursive=True):
        print(os.path.dirname(os.path.dirname(hit))); sys.exit(0)
" 2>/dev/null)
fi
if [ -z "$NLOHMANN" ]; then
  # psg4j never (de)serializes functorch interpreters, the only use of it in those headers: a
  # stand-in that declares what they name (and throws if ever called) lets the core compile.
  echo "run.sh: nlohmann/json.hpp is MISSING (not in torch's include dir, /usr/include, or site-packages):"
  echo "        using a stand-in that only declares what ATen/functorch/Interpreter.h names;"
  echo "        install nlohmann-json3-dev, or set PSG4J_NLOHMANN_DIR=<folder holding nlohmann/json.hpp>, for the real one"
  NLOHMANN=$BUILD_DIR/nlohmann-stand-in
  mkdir -p "$NLOHMANN/nlohmann"
  cp "$HERE/nlohmann_stand_in.hpp" "$NLOHMANN/nlohmann/json.hpp"
fi

# ---- configure and build the core and the self-test ----
step "configure ($BUILD_DIR)"
mkdir -p "$BUILD_DIR"
# The folder build (cmake/TorchFromDir.cmake): torch's own CMake config would need the CUDA
# toolkit (nvcc) for a CUDA torch, which a Python install does not bring.
cmake -S "$SOURCE" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release \
  -DPSG4J_TORCH_INCLUDE_DIR="$TORCH_ROOT/include" -DPSG4J_TORCH_LIB_DIR="$TORCH_ROOT/lib" \
  -DPSG4J_NLOHMANN_INCLUDE_DIR="$NLOHMANN" "${CUDA_ARGS[@]}" > "$BUILD_DIR/configure.log" 2>&1 \
  || { tail -30 "$BUILD_DIR/configure.log"; echo "run.sh: configure failed (log: $BUILD_DIR/configure.log)"; exit 1; }
grep "psg4j: CUDA headers" "$BUILD_DIR/configure.log"
[ "$CONFIGURE_ONLY" = 1 ] && { echo "configured (--configure-only): $BUILD_DIR"; exit 0; }
step "build (-j$JOBS)"
cmake --build "$BUILD_DIR" -j"$JOBS" > "$BUILD_DIR/build.log" 2>&1 \
  || { grep -E "error|Error" "$BUILD_DIR/build.log" | head -30; echo "run.sh: build failed (log: $BUILD_DIR/build.log)"; exit 1; }
SELFTEST=$BUILD_DIR/psg4j_selftest

# ---- the self-test and the bench on the device ----
step "self-test --device $DEVICE"
"$SELFTEST" --device "$DEVICE" > "$BUILD_DIR/selftest.log" 2>&1
SELFTEST_RC=$?
grep -E "^\[FAIL\]|threw" "$BUILD_DIR/selftest.log"
grep -E "cuda:|passed, .* failed|no CUDA device|no CUDA support" "$BUILD_DIR/selftest.log" | grep -v "^\[ ok \] cuda:" || true
SUMMARY=$(grep -E "passed, .* failed" "$BUILD_DIR/selftest.log" | tail -1)
[ -n "$SUMMARY" ] || { tail -20 "$BUILD_DIR/selftest.log"; SUMMARY="self-test did not finish (exit $SELFTEST_RC)"; }

step "bench-table --device $DEVICE --batches $BATCHES"
BENCH_RC=0
if [ "$SELFTEST_RC" -ne 2 ]; then
  timeout 240 "$SELFTEST" bench-table --device "$DEVICE" --batches "$BATCHES" --repeats "$REPEATS" \
    > "$BUILD_DIR/bench.log" 2>&1 || BENCH_RC=$?
  cat "$BUILD_DIR/bench.log"
fi

step "summary"
echo "torch:     $TORCH_VERSION (CUDA $TORCH_CUDA), $VISIBLE device(s); CUDA headers $CUDA_NOTE"
echo "self-test: $SUMMARY"
[ "$BENCH_RC" -eq 0 ] || echo "bench:     exited $BENCH_RC (124: past its 240 s limit)"
echo "wall:      $(( $(date +%s) - START )) s; logs in $BUILD_DIR"
[ "$SELFTEST_RC" -eq 0 ] && exit 0
[ "$SELFTEST_RC" -eq 2 ] && exit 2  # no CUDA device is visible (the self-test said so)
exit 1
