#!/usr/bin/env python3
"""Generate the per-sample-gradient test fixtures for psg4j.

Run with the project's Python environment (torch 2.10.0, opacus 1.6.0):

    python src/test/python/make_fixtures.py [--out DIR]     # a Python with torch 2.10 and opacus 1.6

Writes into src/test/resources/fixtures/ (relative to the repository root):

    <name>/model.pt               TorchScript module (eval mode)
    <name>/x.pt                   input tensor, or tuple of tensors (multi-input)
    <name>/y.pt                   target tensor (only where the loss needs one)
    <name>/grads_func_sum.pt      {param name: Tensor[B, *shape]} reference per-sample grads
    <name>/grads_func_mean.pt     same, loss reduction 'mean'
    <name>/grads_opacus_sum.pt    Opacus GradSampleModule grad_sample, loss_reduction='sum'
    <name>/grads_opacus_mean.pt   same, loss_reduction='mean'
    mlp/bug_*.pt                  planted-bug candidates derived from mlp's func grads
    corrupt.pt, tensor_only.pt    files that are not TorchScript modules
    manifest.json                 description of every fixture and candidate

Definition of the reference ("func") per-sample gradient of sample i: the gradient
of the loss of a batch holding ONLY sample i (x.select(bd, i).unsqueeze(bd)), with the
torch loss reduction applied to that one-sample batch. Computed with
torch.func.vmap(torch.func.grad(...)) over torch.func.functional_call and checked
against an explicit microbatch loop (torch.autograd.grad per sample).

Loss conventions:
    l1            nn.L1Loss(reduction)(out, zeros_like(out))
    mse           nn.MSELoss(reduction)(out, y)
    cross_entropy nn.CrossEntropyLoss(reduction)(out, y), int64 class targets
    sum           out.sum() for 'sum'; out.sum() / N for 'mean' (N = batch size of that batch)

The script is deterministic: running it again rewrites byte-identical files
(it checks that nothing changed when files already exist and reports it).
"""

import copy
import json
import os
import sys
import warnings

import torch
import torch.nn as nn
from torch.func import functional_call, grad, vmap

from opacus import GradSampleModule

ATOL = 1e-6
RTOL = 1e-5

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
DEFAULT_OUT = os.path.join(REPO_ROOT, "src", "test", "resources", "fixtures")


# --------------------------------------------------------------------------- models


class TwoInput(nn.Module):
    def __init__(self):
        super().__init__()
        self.fa = nn.Linear(5, 3)
        self.fb = nn.Linear(3, 3)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.fa(a) + self.fb(b)


class TimeFirst(nn.Module):
    """Input [T, B, F]; the batch dimension is 1."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.tanh(x))


class TransposeTrap(nn.Module):
    """Batch-first input [B, T, F] but the Linear sees [T, B, F].

    The model is batch-independent (per-sample gradients are well defined), but a
    hook-based grad sampler told batch_first=True treats dim 0 of the Linear's
    activations (T) as the batch, which is silently wrong when T == B."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.transpose(0, 1)).transpose(0, 1)


# --------------------------------------------------------------------------- losses


def compute_loss(kind, reduction, out, y):
    if kind == "l1":
        return nn.L1Loss(reduction=reduction)(out, torch.zeros_like(out))
    if kind == "mse":
        return nn.MSELoss(reduction=reduction)(out, y)
    if kind == "cross_entropy":
        return nn.CrossEntropyLoss(reduction=reduction)(out, y)
    if kind == "sum":
        raise ValueError("use compute_loss_sum (needs batch size)")
    raise ValueError(kind)


def loss_of(kind, reduction, out, y, batch_size):
    if kind == "sum":
        return out.sum() if reduction == "sum" else out.sum() / batch_size
    return compute_loss(kind, reduction, out, y)


# --------------------------------------------------------------------------- helpers


def as_tuple(x):
    return x if isinstance(x, tuple) else (x,)


def own(t):
    """A compact copy that owns its storage (torch.save writes whole storages)."""
    return t.detach().clone().contiguous()


def save(obj, path):
    torch.save(obj, path)


def func_grads(model, x, y, loss_kind, reduction, bd):
    """Per-sample grads via vmap(grad(functional_call)) over one-sample batches."""
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}
    xs = as_tuple(x)

    def one_sample_loss(p, xi, yi):
        # xi: tuple of per-sample slices (batch dim removed by vmap); re-add it.
        inputs = tuple(t.unsqueeze(bd) for t in xi)
        out = functional_call(model, (p, buffers), inputs)
        yb = None if yi is None else yi.unsqueeze(0)
        return loss_of(loss_kind, reduction, out, yb, 1)

    if y is None:
        f = lambda p, xi: one_sample_loss(p, xi, None)  # noqa: E731
        g = vmap(grad(f), in_dims=(None, tuple(bd for _ in xs)))(params, xs)
    else:
        g = vmap(grad(one_sample_loss), in_dims=(None, tuple(bd for _ in xs), 0))(
            params, xs, y
        )
    return {k: own(g[k]) for k, _ in model.named_parameters()}


def loop_grads(model, x, y, loss_kind, reduction, bd, B):
    """Explicit microbatch loop: torch.autograd.grad on each one-sample batch."""
    names = [k for k, _ in model.named_parameters()]
    params = [p for _, p in model.named_parameters()]
    per = {k: [] for k in names}
    for i in range(B):
        xi = tuple(t.select(bd, i).unsqueeze(bd) for t in as_tuple(x))
        yi = None if y is None else y[i : i + 1]
        out = model(*xi)
        loss = loss_of(loss_kind, reduction, out, yi, 1)
        gs = torch.autograd.grad(loss, params)
        for k, gk in zip(names, gs):
            per[k].append(gk.detach())
    return {k: torch.stack(v, 0) for k, v in per.items()}


def opacus_grads(model, x, y, loss_kind, reduction, batch_first):
    # Opacus hooks only capture activations in training mode; the fixture models
    # have no dropout/batch-norm, so train() does not change the function.
    m = copy.deepcopy(model).train()
    gsm = GradSampleModule(m, batch_first=batch_first, loss_reduction=reduction)
    gsm.zero_grad()
    out = gsm(*as_tuple(x))
    B = as_tuple(x)[0].shape[0 if batch_first else 1]
    loss = loss_of(loss_kind, reduction, out, y, B)
    loss.backward()
    res = {k: own(p.grad_sample) for k, p in m.named_parameters()}
    gsm._close()
    return res


def max_abs_diff(a, b):
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


def all_close(a, b):
    return a.keys() == b.keys() and all(
        a[k].shape == b[k].shape and torch.allclose(a[k], b[k], atol=ATOL, rtol=RTOL)
        for k in a
    )


def describe_mismatch(ref, cand, param_names):
    """(bug_param, bug_samples, kind) of a candidate against the reference grads.

    bug_param is the first parameter (named_parameters order) that is wrong;
    bug_samples are the sample indices that are not allclose in that parameter."""
    for k in param_names:
        if k not in cand:
            return k, None, "missing_param"
    for k in cand:
        if k not in ref:
            return k, None, "extra_param"
    for k in param_names:
        if tuple(cand[k].shape) != tuple(ref[k].shape):
            return k, None, "shape"
    for k in param_names:
        if not torch.isfinite(cand[k]).all():
            bad = (~torch.isfinite(cand[k])).flatten(1).any(1)
            return k, [int(i) for i in bad.nonzero().flatten()], "non_finite"
    for k in param_names:
        c = cand[k].to(ref[k].dtype)
        close = torch.isclose(c, ref[k], atol=ATOL, rtol=RTOL).flatten(1).all(1)
        if not close.all():
            return k, [int(i) for i in (~close).nonzero().flatten()], "value"
    return None, None, None


# --------------------------------------------------------------------------- fixtures


def fixture_specs():
    """Each spec builder runs after torch.manual_seed(0)."""

    def mlp():
        model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
        x = torch.randn(6, 8)
        y = torch.randint(0, 4, (6,), dtype=torch.int64)
        return dict(model=model, x=x, y=y, loss="cross_entropy", bd=0)

    def cnn():
        model = nn.Sequential(
            nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)
        )
        x = torch.randn(5, 1, 8, 8)
        return dict(model=model, x=x, y=None, loss="l1", bd=0)

    def two_input():
        model = TwoInput()
        a = torch.randn(4, 5)
        b = torch.randn(4, 3)
        y = torch.randn(4, 3)
        return dict(model=model, x=(a, b), y=y, loss="mse", bd=0)

    def time_first():
        model = TimeFirst()
        x = torch.randn(5, 3, 6)
        return dict(model=model, x=x, y=None, loss="l1", bd=1)

    def transpose_trap():
        model = TransposeTrap()
        x = torch.randn(4, 4, 4)
        return dict(model=model, x=x, y=None, loss="l1", bd=0, opacus_wrong=True)

    def emb():
        model = nn.Sequential(nn.Embedding(50, 8), nn.Flatten(), nn.Linear(32, 3))
        x = torch.randint(0, 50, (6, 4), dtype=torch.int64)
        return dict(model=model, x=x, y=None, loss="l1", bd=0)

    return [
        ("mlp", mlp),
        ("cnn", cnn),
        ("two_input", two_input),
        ("time_first", time_first),
        ("transpose_trap", transpose_trap),
        ("emb", emb),
    ]


def make_fixture(out_dir, name, build, log):
    torch.manual_seed(0)
    spec = build()
    model = spec["model"].eval()
    x, y, loss_kind, bd = spec["x"], spec["y"], spec["loss"], spec["bd"]
    x = tuple(own(t) for t in x) if isinstance(x, tuple) else own(x)
    y = None if y is None else own(y)
    B = as_tuple(x)[0].shape[bd]
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)

    try:
        scripted = torch.jit.script(model)
    except Exception as e:  # pragma: no cover - fallback only
        print(f"[{name}] torch.jit.script failed ({e}); tracing", file=sys.stderr)
        scripted = torch.jit.trace(model, as_tuple(x))
    scripted.eval()
    scripted.save(os.path.join(d, "model.pt"))
    save(x, os.path.join(d, "x.pt"))
    if y is not None:
        save(y, os.path.join(d, "y.pt"))

    param_names = [k for k, _ in model.named_parameters()]
    script_names = [k for k, _ in scripted.named_parameters()]
    assert param_names == script_names, (param_names, script_names)

    # The scripted module must compute the same output as the eager one.
    with torch.no_grad():
        assert torch.equal(model(*as_tuple(x)), scripted(*as_tuple(x))), name

    candidates = {}
    refs = {}
    for red in ("sum", "mean"):
        fg = func_grads(model, x, y, loss_kind, red, bd)
        lg = loop_grads(model, x, y, loss_kind, red, bd, B)
        if not all_close(fg, lg):
            sys.exit(
                f"[{name}] func grads ({red}) differ from microbatch loop: "
                f"max abs diff {max_abs_diff(fg, lg):.3e}"
            )
        log(f"[{name}] func vs microbatch loop ({red}): max abs diff {max_abs_diff(fg, lg):.3e}")
        refs[red] = fg
        fn = f"grads_func_{red}.pt"
        save(fg, os.path.join(d, fn))
        candidates[fn] = dict(
            reduction=red, expect_pass=True, bug_param=None, bug_samples=None, kind=None
        )

    for red in ("sum", "mean"):
        og = opacus_grads(model, x, y, loss_kind, red, batch_first=(bd == 0))
        diff = max_abs_diff(og, refs[red])
        fn = f"grads_opacus_{red}.pt"
        save(og, os.path.join(d, fn))
        if spec.get("opacus_wrong"):
            if all_close(og, refs[red]):
                sys.exit(f"[{name}] expected Opacus ({red}) to be WRONG, but it matches func")
            bp, bs, kind = describe_mismatch(refs[red], og, param_names)
            log(f"[{name}] opacus vs func ({red}): max abs diff {diff:.3e}  (expected to DIFFER: ok)")
            candidates[fn] = dict(
                reduction=red, expect_pass=False, bug_param=bp, bug_samples=bs, kind=kind
            )
        else:
            if not all_close(og, refs[red]):
                sys.exit(f"[{name}] Opacus ({red}) differs from func: max abs diff {diff:.3e}")
            log(f"[{name}] opacus vs func ({red}): max abs diff {diff:.3e}")
            candidates[fn] = dict(
                reduction=red, expect_pass=True, bug_param=None, bug_samples=None, kind=None
            )

    if name == "mlp":
        candidates.update(make_mlp_bugs(d, refs, param_names, B, log))

    entry = {
        "name": name,
        "inputs": ["x.pt"],
        "multi_input": isinstance(x, tuple),
        "batch_dim": bd,
        "batch_size": B,
        "loss": loss_kind,
        "target": "y.pt" if y is not None else None,
        "param_names": param_names,
        "param_shapes": {k: list(p.shape) for k, p in model.named_parameters()},
        "candidates": candidates,
    }
    return entry


def make_mlp_bugs(d, refs, param_names, B, log):
    s, m = refs["sum"], refs["mean"]
    c = lambda g: {k: own(v) for k, v in g.items()}  # noqa: E731
    bugs = {}

    g = {k: own(v / B) for k, v in m.items()}
    bugs["bug_mean_unscaled.pt"] = ("mean", g, dict(bug_param="0.weight", kind="value"))

    g = c(s)
    w = g["2.weight"]
    w[[1, 3]] = w[[3, 1]].clone()
    bugs["bug_swapped.pt"] = ("sum", g, dict(bug_param="2.weight", bug_samples=[1, 3], kind="value"))

    g = {k: own(v) for k, v in s.items() if k != "2.bias"}
    bugs["bug_missing.pt"] = ("sum", g, dict(bug_param="2.bias", bug_samples=None, kind="missing_param"))

    g = c(s)
    torch.manual_seed(0)
    g["3.weight"] = torch.randn(B, 2)
    bugs["bug_extra.pt"] = ("sum", g, dict(bug_param="3.weight", bug_samples=None, kind="extra_param"))

    g = c(s)
    g["0.weight"] = own(g["0.weight"].transpose(1, 2))
    bugs["bug_shape.pt"] = ("sum", g, dict(bug_param="0.weight", bug_samples=None, kind="shape"))

    g = c(s)
    g["0.bias"][2, 5] += 0.05
    bugs["bug_perturbed.pt"] = ("sum", g, dict(bug_param="0.bias", bug_samples=[2], kind="value"))

    g = c(s)
    g["2.weight"][4, 0, 0] = float("nan")
    bugs["bug_nan.pt"] = ("sum", g, dict(bug_param="2.weight", bug_samples=[4], kind="non_finite"))

    g = {k: own(v.to(torch.float64)) for k, v in s.items()}
    bugs["bug_float64.pt"] = ("sum", g, dict(bug_param=None, bug_samples=None, kind=None))

    out = {}
    for fn, (red, g, want) in bugs.items():
        save(g, os.path.join(d, fn))
        bp, bs, kind = describe_mismatch(refs[red], g, param_names)
        expect_pass = kind is None
        # Cross-check the intended bug against what a comparison actually finds.
        assert bp == want.get("bug_param", bp), (fn, bp, want)
        assert kind == want["kind"], (fn, kind, want)
        if "bug_samples" in want:
            assert bs == want["bug_samples"], (fn, bs, want)
        out[fn] = dict(
            reduction=red, expect_pass=expect_pass, bug_param=bp, bug_samples=bs, kind=kind
        )
        log(f"[mlp] {fn}: reduction={red} kind={kind} bug_param={bp} bug_samples={bs}")
    return out


def make_misc(out_dir):
    g = torch.Generator().manual_seed(1234)
    raw = torch.randint(0, 256, (200,), dtype=torch.uint8, generator=g).numpy().tobytes()
    with open(os.path.join(out_dir, "corrupt.pt"), "wb") as f:
        f.write(raw)
    torch.manual_seed(0)
    save(torch.randn(3, 4), os.path.join(out_dir, "tensor_only.pt"))


def main():

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import fixture_tools

    out_dir, quiet = fixture_tools.start(__doc__, DEFAULT_OUT, __file__, REPO_ROOT, "PSG4J_FIXTURES_CHILD")
    # Opacus registers full backward hooks; inputs not requiring grad trigger a
    # harmless torch warning on every backward.
    warnings.filterwarnings("ignore", message="Full backward hook is firing")

    torch.set_num_threads(1)  # reproducible reductions
    torch.use_deterministic_algorithms(True)

    before = fixture_tools.digest_tree(out_dir) if os.path.isdir(out_dir) else {}
    os.makedirs(out_dir, exist_ok=True)
    log = (lambda s: None) if quiet else print

    manifest = []
    for name, build in fixture_specs():
        manifest.append(make_fixture(out_dir, name, build, log))
    make_misc(out_dir)
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")

    after = fixture_tools.digest_tree(out_dir)
    total = sum(os.path.getsize(os.path.join(out_dir, p)) for p in after)
    log(f"wrote {len(after)} files, {total} bytes total into {out_dir}")
    if total >= 2 * 1024 * 1024:
        sys.exit(f"fixtures too large: {total} bytes")
    if before:
        log(fixture_tools.regeneration_report(before, after))


if __name__ == "__main__":
    main()
