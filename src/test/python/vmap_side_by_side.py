#!/usr/bin/env python3
"""psg4j's vmap engine next to torch.func and JAX, side by side in one run (1 thread).

    python src/test/python/vmap_side_by_side.py [--driver LABEL=PATH ...] [--batches 32,256]
        [--rounds 3] [--repeats 11] [--no-jax]

The DESIGN §7 suite is exported once per batch size (bench_python.py's seeded weights and
inputs). Each round runs every native driver (`psg4j_selftest vmap-bench`: the vmap engine
allocating its results, the same into reused buffers, functorch's route alone, one batched
backward, the memory-write floor B × |θ| × 4 bytes at the bandwidth the driver measured), then,
in this process, torch.func's vmap(grad), one batched backward and JAX's jit(vmap(grad)) on
the same inputs. Rounds alternate so that every side sees the same machine; the table keeps the
median over rounds of each round's median. Default driver: target/cmake/psg4j_selftest (bytedeco's
LibTorch); add e.g. --driver pip=/tmp/build-piptorch/psg4j_selftest for a build on pip's LibTorch.

Target: vmap ≤ torch.func / 1.2, or, where that is below one batched backward on the
same LibTorch, ≤ 1.2 × that backward.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    import jax_suite  # sets XLA's one-thread flags before jax loads
except ImportError:
    jax_suite = None

import torch  # noqa: E402

import bench_python  # noqa: E402

LINE = re.compile(r"^(\S+)\s+(.*)$")


def run_driver(path, batch, repeats, models):
    """{model: {key: ms}} from one `vmap-bench` run."""
    out = subprocess.run([path, "vmap-bench", "--threads", "1", "--batch", str(batch), "--repeats",
                          str(repeats), "--models", models], check=True, capture_output=True, text=True).stdout
    rows = {}
    for line in out.splitlines()[1:]:
        m = LINE.match(line)
        if not m:
            continue
        fields = m.group(2).split()
        rows[m.group(1)] = {fields[k]: float(fields[k + 1]) for k in range(0, len(fields) - 1, 2)}
    return rows


def python_side(suite, models, repeats, use_jax, checked):
    model, x = bench_python.load_exported(suite, models)
    row = {"torch.func": bench_python.time_ms(lambda: bench_python.m_func_vmap(model, x), repeats),
           "torch backward": bench_python.time_ms(lambda: bench_python.m_batched_backward(model, x), repeats)}
    if use_jax:
        fn = jax_suite.per_sample_gradients(suite)
        params, xj = jax_suite.from_torch(model, x)
        key = (suite, x.shape[0])
        if key not in checked:
            checked[key] = jax_suite.matches(jax_suite.run(fn, params, xj), bench_python.m_func_vmap(model, x))
            if not checked[key]:
                print(f"warning: JAX's gradients differ from torch.func's on {suite}", file=sys.stderr)
        row["jax"] = bench_python.time_ms(lambda: jax_suite.run(fn, params, xj), repeats)
    return row


def target_ms(torch_func, backward):
    faster = torch_func / 1.2
    return faster if faster >= backward else 1.2 * backward


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--driver", action="append", default=[], metavar="LABEL=PATH")
    ap.add_argument("--batches", default="32,256")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=11)
    ap.add_argument("--no-jax", action="store_true")
    args = ap.parse_args()
    drivers = [d.split("=", 1) for d in args.driver] or [["bytedeco", "target/cmake/psg4j_selftest"]]
    batches = [int(b) for b in args.batches.split(",")]
    use_jax = jax_suite is not None and not args.no_jax
    torch.set_num_threads(1)

    samples = {}  # (batch, model, column) -> [per-round medians]
    checked = {}
    with tempfile.TemporaryDirectory(prefix="psg4j-vmap-") as tmp:
        dirs = {}
        for b in batches:
            dirs[b] = os.path.join(tmp, str(b))
            bench_python.export(bench_python.SUITES, b, dirs[b])
        for r in range(args.rounds):
            for b in batches:
                for label, path in drivers:
                    for model, row in run_driver(path, b, args.repeats, dirs[b]).items():
                        for key, value in row.items():
                            samples.setdefault((b, model, f"{label} {key}"), []).append(value)
                for suite in bench_python.SUITES:
                    for key, value in python_side(suite, dirs[b], args.repeats, use_jax, checked).items():
                        samples.setdefault((b, suite, key), []).append(value)
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)

    med = {k: statistics.median(v) for k, v in samples.items()}
    print(f"# medians over {args.rounds} alternating rounds, {args.repeats} repeats each, 1 thread, ms")
    for label, _ in drivers:
        print(f"\n## {label} LibTorch")
        print("| B | model | vmap | vmap-into | functorch route | torch.func | JAX | backward | floor | "
              "torch.func/vmap | torch.func/into | target | vmap met | into met | JAX/into |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for b in batches:
            for model in sorted({m for (bb, m, _) in med if bb == b}):
                suite = model.removesuffix("-ts")
                g = lambda key: med.get((b, model, f"{label} {key}"))  # noqa: E731
                vmap, into, ft, back, floor = g("vmap"), g("vmap-into"), g("vmap-functorch"), g("backward"), g("floor")
                if vmap is None:
                    continue
                tf, jx = med.get((b, suite, "torch.func")), med.get((b, suite, "jax"))
                target = target_ms(tf, back)
                fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
                print(f"| {b} | {model} | {fmt(vmap)} | {fmt(into)} | {fmt(ft)} | {fmt(tf)} | {fmt(jx)} | "
                      f"{fmt(back)} | {fmt(floor)} | {tf / vmap:.2f}x | {tf / into:.2f}x | {target:.2f} | "
                      f"{'yes' if vmap <= target else 'no'} | {'yes' if into <= target else 'no'} | "
                      f"{'-' if jx is None else f'{jx / into:.2f}x'} |")
    if checked:
        print(f"\nJAX equal to torch.func: {all(checked.values())} ({len(checked)} cases)")


if __name__ == "__main__":
    main()
