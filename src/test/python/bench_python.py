#!/usr/bin/env python3
"""Python baselines for the psg4j benchmark suite (DESIGN suite).

    python src/test/python/bench_python.py \
        --suite all --batch 1,8,32,128,256 --threads 1 --repeats 21 [--export DIR]

Suites (loss: nn.L1Loss(reduction='sum') against zeros):
    mlp  Linear(784,256)-ReLU-Linear(256,10)                          x [B,784]
    cnn  Conv2d(1,16,5)-ReLU-MaxPool2d(2)-Conv2d(16,32,5)-ReLU-MaxPool2d(2)
         -Flatten-Linear(512,10)                                      x [B,1,28,28]
    seq  Linear(64,128)-LayerNorm(128)-GELU-Linear(128,64)             x [B,16,64]
    emb  Embedding(1000,64)-Flatten-Linear(512,10)                    x int64 [B,8]

Methods timed (median wall-clock ms over --repeats, after one warm-up run):
    batched_backward       one forward + backward of the batch loss (no per-sample grads)
    microbatch_loop        bare Python loop: forward + torch.autograd.grad per one-sample batch
    func_vmap              torch.func.vmap(grad(functional_call)) per-sample grads
    opacus_grad_sample     Opacus GradSampleModule (hooks), one backward (wrap included)
    opacus_check           opacus.utils.per_sample_gradients_utils.check_per_sample_gradients_are_correct
                           (both reductions, microbatch + Opacus, as the library runs it)
    opacus_microbatch      opacus ... compute_microbatch_grad_sample (reduction 'sum'), if present
    jax_vmap               jax.jit(jax.vmap(jax.grad(loss))) on the same weights and inputs (XLA, --threads
                           intra-op threads), where jax is importable; before timing, its per-sample
                           gradients are checked equal to torch.func's (allclose, atol 1e-5, rtol 1e-4)

Each method runs once to warm up, then up to --repeats times, stopping early (after at least 3)
once --budget-ms is spent; the median is reported. --batch takes a comma list: every suite is
timed at every batch size.

Prints one JSON object {"threads": N, "results": [{suite, batch, method, median_ms, repeats}]}
to stdout (diagnostics to stderr).

--export DIR writes DIR/<suite>.pt (TorchScript, eval mode; the weights do not depend on B) and,
per batch size B, DIR/<suite>_x_b<B>.pt (the input, torch.save) for every selected suite, with
the same seeded weights and inputs the benchmark uses, so a Java/LibTorch benchmark can run on
identical data (`psg4j bench --models DIR --batch LIST`); with a single B also DIR/<suite>_x.pt,
the layout the native driver reads (`psg4j_selftest bench --models DIR`). --export-only stops there.

--models DIR times on the inputs exported to DIR instead (DIR/<suite>_x_b<B>.pt per --batch, or
DIR/<suite>_x.pt without --batch). torch.func's functional_call needs an eager nn.Module, so the
models are rebuilt with the export's seed and their weights asserted equal to DIR/<suite>.pt's.
"""

import argparse
import copy
import json
import os
import statistics
import sys
import time
import warnings

import torch
import torch.nn as nn
from torch.func import functional_call, grad, vmap

SUITES = ("mlp", "cnn", "seq", "emb")
SEED = 0


def build(suite, batch):
    """Seeded model and input for a suite (identical for bench and --export)."""
    torch.manual_seed(SEED)
    if suite == "mlp":
        model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
        x = torch.randn(batch, 784)
    elif suite == "cnn":
        model = nn.Sequential(
            nn.Conv2d(1, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(512, 10),
        )
        x = torch.randn(batch, 1, 28, 28)
    elif suite == "seq":
        model = nn.Sequential(
            nn.Linear(64, 128), nn.LayerNorm(128), nn.GELU(), nn.Linear(128, 64)
        )
        x = torch.randn(batch, 16, 64)
    elif suite == "emb":
        model = nn.Sequential(nn.Embedding(1000, 64), nn.Flatten(), nn.Linear(512, 10))
        x = torch.randint(0, 1000, (batch, 8), dtype=torch.int64)
    else:
        raise ValueError(suite)
    return model.eval(), x


def l1_sum(out):
    return nn.L1Loss(reduction="sum")(out, torch.zeros_like(out))


# ----------------------------------------------------------------------------- methods


def m_batched_backward(model, x):
    params = [p for p in model.parameters()]
    return torch.autograd.grad(l1_sum(model(x)), params)


def m_microbatch_loop(model, x):
    names = [k for k, _ in model.named_parameters()]
    params = [p for _, p in model.named_parameters()]
    per = [[] for _ in params]
    for i in range(x.shape[0]):
        gs = torch.autograd.grad(l1_sum(model(x[i : i + 1])), params)
        for lst, g in zip(per, gs):
            lst.append(g)
    return {k: torch.stack(v) for k, v in zip(names, per)}


def m_func_vmap(model, x):
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def loss(p, xi):
        return l1_sum(functional_call(model, (p, buffers), (xi.unsqueeze(0),)))

    return vmap(grad(loss), in_dims=(None, 0))(params, x)


def m_opacus_grad_sample(model, x):
    from opacus import GradSampleModule

    m = copy.deepcopy(model).train()  # Opacus hooks capture activations in train mode
    gsm = GradSampleModule(m, batch_first=True, loss_reduction="sum")
    l1_sum(gsm(x)).backward()
    res = {k: p.grad_sample for k, p in m.named_parameters()}
    gsm._close()
    return res


def m_opacus_check(model, x):
    from opacus.utils.per_sample_gradients_utils import (
        check_per_sample_gradients_are_correct,
    )

    ok = check_per_sample_gradients_are_correct(x, copy.deepcopy(model).train(), batch_first=True)
    if not ok:
        print("warning: opacus check_per_sample_gradients_are_correct returned False",
              file=sys.stderr)
    return ok


def m_opacus_microbatch(model, x):
    from opacus.utils.per_sample_gradients_utils import compute_microbatch_grad_sample

    return compute_microbatch_grad_sample(
        x, copy.deepcopy(model).train(), batch_first=True, loss_reduction="sum"
    )

# ----------------------------------------------------------------------------- JAX


def jax_forward(suite):
    """The suite model as a pure function of (params, x) in jax.numpy, PyTorch's layouts and defaults."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    def linear(p, name, x):
        return x @ p[name + ".weight"].T + p[name + ".bias"]

    def conv(p, name, x):
        y = lax.conv_general_dilated(x, p[name + ".weight"], (1, 1), "VALID",
                                     dimension_numbers=("NCHW", "OIHW", "NCHW"))
        return y + p[name + ".bias"][None, :, None, None]

    def max_pool2(x):
        return lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")

    def layer_norm(p, name, x, eps=1e-5):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / jnp.sqrt(var + eps) * p[name + ".weight"] + p[name + ".bias"]

    def flatten(x):
        return x.reshape(x.shape[0], -1)

    if suite == "mlp":
        return lambda p, x: linear(p, "2", jax.nn.relu(linear(p, "0", x)))
    if suite == "cnn":
        def cnn(p, x):
            h = max_pool2(jax.nn.relu(conv(p, "0", x)))
            h = max_pool2(jax.nn.relu(conv(p, "3", h)))
            return linear(p, "7", flatten(h))
        return cnn
    if suite == "seq":
        return lambda p, x: linear(p, "3", jax.nn.gelu(layer_norm(p, "1", linear(p, "0", x)), approximate=False))
    if suite == "emb":
        return lambda p, x: linear(p, "2", flatten(p["0.weight"][x]))
    raise ValueError(suite)


def jax_per_sample(suite, model, x):
    """jit(vmap(grad(l1 sum of one sample as a batch of one))) and its arguments, from the torch model."""
    import jax
    import jax.numpy as jnp

    forward = jax_forward(suite)

    def loss(p, xi):
        return jnp.abs(forward(p, xi[None])).sum()

    params = {k: jnp.asarray(v.detach().numpy()) for k, v in model.named_parameters()}
    xs = jnp.asarray(x.numpy().astype("int32") if x.dtype == torch.int64 else x.numpy())
    return jax.jit(jax.vmap(jax.grad(loss), in_axes=(None, 0))), params, xs


def jax_checked(suite, model, x):
    """The timed call of jax_vmap, after checking its per-sample gradients equal torch.func's."""
    import jax
    import numpy as np

    fn, params, xs = jax_per_sample(suite, model, x)
    got = jax.block_until_ready(fn(params, xs))
    want = m_func_vmap(model, x)
    for k, v in want.items():
        a, b = np.asarray(got[k]), v.numpy()
        if a.shape != b.shape or not np.allclose(a, b, atol=1e-5, rtol=1e-4):
            err = float(np.max(np.abs(a - b))) if a.shape == b.shape else f"shape {a.shape} vs {b.shape}"
            raise SystemExit(f"jax_vmap differs from torch.func on {suite} B={x.shape[0]} {k}: max |diff| {err}")
    return lambda: jax.block_until_ready(fn(params, xs))


def jax_available(threads):
    """Imports jax on the CPU with `threads` intra-op threads (XLA reads its flags at import)."""
    flags = os.environ.get("XLA_FLAGS", "")
    if threads == 1:
        flags += " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    else:
        flags += f" intra_op_parallelism_threads={threads}"
    os.environ["XLA_FLAGS"] = flags.strip()
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    try:
        import jax  # noqa: F401
    except ImportError:
        print("note: jax not installed; skipping jax_vmap", file=sys.stderr)
        return False
    return True



def methods():
    ms = {
        "batched_backward": m_batched_backward,
        "microbatch_loop": m_microbatch_loop,
        "func_vmap": m_func_vmap,
    }
    try:
        import opacus  # noqa: F401
        from opacus.utils import per_sample_gradients_utils as psu
    except ImportError:
        print("note: opacus not installed; skipping Opacus methods", file=sys.stderr)
        return ms
    ms["opacus_grad_sample"] = m_opacus_grad_sample
    if hasattr(psu, "check_per_sample_gradients_are_correct"):
        ms["opacus_check"] = m_opacus_check
    if hasattr(psu, "compute_microbatch_grad_sample"):
        ms["opacus_microbatch"] = m_opacus_microbatch
    return ms


def time_ms(fn, repeats, budget_ms, min_repeats=3):
    """Median ms of fn after one warm-up call: up to `repeats` calls, at least `min_repeats`
    (or `repeats` if fewer), stopping once `budget_ms` is spent. Returns (median, calls timed)."""
    fn()  # warm-up
    ts = []
    start = time.perf_counter()
    while len(ts) < repeats:
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
        if len(ts) >= min_repeats and (time.perf_counter() - start) * 1e3 >= budget_ms:
            break
    return statistics.median(ts), len(ts)


def input_file(models_dir, suite, batch):
    """DIR/<suite>_x_b<B>.pt (a sweep's export) where it exists, else DIR/<suite>_x.pt."""
    per_batch = os.path.join(models_dir, f"{suite}_x_b{batch}.pt")
    if batch is not None and os.path.isfile(per_batch):
        return per_batch
    return os.path.join(models_dir, f"{suite}_x.pt")


def export(suites, batches, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    for s in suites:
        model, _ = build(s, batches[0])
        torch.jit.script(model).save(os.path.join(out_dir, f"{s}.pt"))
        for b in batches:
            _, x = build(s, b)
            names = [f"{s}_x_b{b}.pt"] + ([f"{s}_x.pt"] if len(batches) == 1 else [])
            for name in names:
                torch.save(x.contiguous(), os.path.join(out_dir, name))
            print(f"exported {s}: {out_dir}/{s}.pt, " + ", ".join(f"{out_dir}/{n}" for n in names)
                  + f" {tuple(x.shape)}", file=sys.stderr)


def load_exported(suite, models_dir, batch=None):
    """The eager model and input of a suite as --export wrote them to models_dir, verified."""
    path = input_file(models_dir, suite, batch)
    x = torch.load(path)
    if batch is not None and x.shape[0] != batch:
        raise SystemExit(f"{path} holds a batch of {x.shape[0]}, not {batch}: "
                         f"export with --export {models_dir} --batch {batch}")
    model, built_x = build(suite, x.shape[0])
    exported = torch.jit.load(os.path.join(models_dir, f"{suite}.pt")).state_dict()
    mine = model.state_dict()
    if list(exported) != list(mine):
        raise SystemExit(f"{models_dir}/{suite}.pt has parameters {list(exported)}, "
                         f"not {list(mine)}: re-export with --export {models_dir}")
    for k, v in mine.items():
        if not torch.equal(v, exported[k]):
            raise SystemExit(f"{models_dir}/{suite}.pt: {k} differs from the seeded rebuild "
                             f"(another torch version or seed?): re-export with --export {models_dir}")
    if not torch.equal(built_x, x):
        print(f"note: {path} differs from the seeded input; timing the exported one", file=sys.stderr)
    return model, x


def batch_list(text):
    """--batch: a comma list of whole numbers of at least 1."""
    try:
        out = [int(b) for b in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma list of whole numbers like 1,8,32")
    if any(b < 1 for b in out):
        raise argparse.ArgumentTypeError(f"'{text}': every batch size must be at least 1")
    return sorted(set(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--suite", choices=SUITES + ("all",), default="all")
    ap.add_argument("--batch", type=batch_list, default=None,
                    help="comma list of batch sizes (default 32; with --models: the export's)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5, help="timed calls per method, at most")
    ap.add_argument("--budget-ms", type=float, default=float("inf"),
                    help="stop timing a method after this many ms (at least 3 calls)")
    ap.add_argument("--export", metavar="DIR", help="also save TorchScript models and inputs here")
    ap.add_argument("--export-only", action="store_true", help="with --export: export, time nothing")
    ap.add_argument("--models", metavar="DIR",
                    help="time on the models and inputs exported to DIR (weights verified)")
    ap.add_argument("--methods", help="comma-separated subset of methods to time")
    args = ap.parse_args()
    if args.export_only and not args.export:
        ap.error("--export-only needs --export DIR")
    if args.export and args.models:
        ap.error("give --export DIR or --models DIR, not both")

    warnings.filterwarnings("ignore", message="Full backward hook is firing")
    torch.set_num_threads(args.threads)
    suites = SUITES if args.suite == "all" else (args.suite,)

    if args.export:
        export(suites, args.batch or [32], args.export)
        if args.export_only:
            return

    ms = methods()
    if jax_available(args.threads):
        ms["jax_vmap"] = None  # built per suite and batch: jax_checked
    if args.methods:
        wanted = args.methods.split(",")
        unknown = [w for w in wanted if w not in ms]
        if unknown:
            ap.error(f"unknown/unavailable methods: {unknown}; have {list(ms)}")
        ms = {k: ms[k] for k in wanted}

    results = []
    batches = args.batch or ([None] if args.models else [32])
    for b in batches:
        for s in suites:
            model, x = load_exported(s, args.models, b) if args.models else build(s, b)
            for name, fn in ms.items():
                call = jax_checked(s, model, x) if name == "jax_vmap" else (lambda: fn(model, x))
                median, n = time_ms(call, args.repeats, args.budget_ms)
                results.append({"suite": s, "batch": int(x.shape[0]), "method": name,
                                "median_ms": round(median, 4), "repeats": n})
                print(f"{s}/{name} B={x.shape[0]}: {median:.3f} ms ({n} calls)", file=sys.stderr)
    print(json.dumps({"threads": args.threads, "results": results}))


if __name__ == "__main__":
    main()
