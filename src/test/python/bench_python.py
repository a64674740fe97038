#!/usr/bin/env python3
"""Python baselines for the psg4j benchmark suite (DESIGN suite).

    python src/test/python/bench_python.py \
        --suite all --batch 32 --threads 1 --repeats 5 [--export DIR]

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

Prints one JSON object {suite: {method: median_ms}} to stdout (diagnostics to stderr).

--export DIR writes DIR/<suite>.pt (TorchScript, eval mode) and DIR/<suite>_x.pt (the
input, torch.save) for every selected suite, with the same seeded weights and inputs
the benchmark uses, so a Java/LibTorch benchmark can run on identical data
(`psg4j bench --models DIR`); --export-only stops there.

--models DIR times on the inputs exported to DIR instead (their batch size wins over
--batch). torch.func's functional_call needs an eager nn.Module, so the models are
rebuilt with the export's seed and their weights asserted equal to DIR/<suite>.pt's.
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


def time_ms(fn, repeats):
    fn()  # warm-up
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(ts)


def export(suites, batch, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    for s in suites:
        model, x = build(s, batch)
        torch.jit.script(model).save(os.path.join(out_dir, f"{s}.pt"))
        torch.save(x.contiguous(), os.path.join(out_dir, f"{s}_x.pt"))
        print(f"exported {s}: {out_dir}/{s}.pt, {out_dir}/{s}_x.pt {tuple(x.shape)}",
              file=sys.stderr)


def load_exported(suite, models_dir):
    """The eager model and input of a suite as --export wrote them to models_dir, verified."""
    x = torch.load(os.path.join(models_dir, f"{suite}_x.pt"))
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
        print(f"note: {models_dir}/{suite}_x.pt differs from the seeded input; timing the exported one",
              file=sys.stderr)
    return model, x


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--suite", choices=SUITES + ("all",), default="all")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
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
        export(suites, args.batch, args.export)
        if args.export_only:
            return

    ms = methods()
    if args.methods:
        wanted = args.methods.split(",")
        unknown = [w for w in wanted if w not in ms]
        if unknown:
            ap.error(f"unknown/unavailable methods: {unknown}; have {list(ms)}")
        ms = {k: ms[k] for k in wanted}

    result = {}
    for s in suites:
        model, x = load_exported(s, args.models) if args.models else build(s, args.batch)
        result[s] = {}
        for name, fn in ms.items():
            result[s][name] = round(time_ms(lambda: fn(model, x), args.repeats), 3)
            print(f"{s}/{name}: {result[s][name]} ms", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
