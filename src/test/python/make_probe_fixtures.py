#!/usr/bin/env python3
"""Generate the test fixtures for psg4j's batch-independence and determinism probes.

Run with the project's Python environment (torch 2.10.0):

    /root/.cache/psg4j/pyenv/bin/python src/test/python/make_probe_fixtures.py [--out DIR] [--quiet]

Writes into src/test/resources/probe_fixtures/ (relative to the repository root):

    <case>/model.pt   TorchScript module (torch.jit.script), saved in eval mode unless the case
                      says train mode (batchnorm_train, dropout_train: the loaded module is in train
                      mode, checked)
    <case>/x.pt       input tensor, or tuple of tensors (multi-input); float32, or int64 token ids
    manifest.json     JSON array, one object per case, fields:
      name, description (one line), inputs (["x.pt"]), multi_input, batch_dim, batch_size,
      input_shapes, integer_input, training (the saved module's mode), sequential (the root is an
      nn.Sequential: a chain of submodules that can be run one by one),
      mixes       true when some sample's output depends on another sample of the batch;
      mixing_module  null, or the dotted name (as named_modules() names it) of the FIRST submodule,
                  in execution order, whose own forward mixes samples (the innermost such module);
      leaks       {probe sample (string) -> sorted list of the OTHER samples its output depends
                  on}, for the probe samples 0, 1 and B-1 (self excluded: [] means independent);
      leak_pattern  over all B samples: "none", "all" (every sample depends on every other) or
                  "earlier" (sample i depends exactly on the samples j < i);
      deterministic  two forwards of the loaded module on x.pt give identical outputs.

Batch mixing is measured on the saved TorchScript module loaded back with torch.jit.load:
  float inputs     the Jacobian (torch.autograd.functional.jacobian) of every output with respect to
                   every input, both moved batch-first: out_i depends on x_j when
                   max |d out_i / d x_j| is non-zero; cross-checked by perturbing sample j of
                   every input (+ N(0, 1)) and seeing which output samples change (same RNG seed
                   before every forward, so that dropout draws the same mask);
  integer inputs   perturbation only: sample j's token ids are replaced by (id + 1) % vocab and by
                   (id + 7) % vocab, out_i depends on x_j when it changes.
Every dependence must be clear-cut: an off-diagonal magnitude is either exactly 0 or above 1e-5
(the script aborts otherwise). The measured matrix must give the case's expected leak_pattern, and
the perturbation must agree with the Jacobian. mixing_module is measured by recording (forward
pre-hooks, on the eager module) the arguments each submodule is called with and measuring the
loaded module's submodule of the same name on them, the same way (batch dim of the case; the
eager submodule where the scripted one has no callable forward, as nn.LSTM's overloads); clean
cases must have no mixing submodule at all. The script also checks that the loaded module computes
the eager module's output, its parameter names, and that x.pt is unchanged.

The script is deterministic: running it again rewrites byte-identical files (it checks that
nothing changed when files already exist and reports it). TorchScript debug info records the
source lines of the custom modules below: keep this docstring's line count, add modules after
the others.
"""

import copy
import json
import os
import sys

import torch
import torch.nn as nn

MAX_BYTES = 400 * 1024
DEP_TOL = 1e-5  # an off-diagonal dependence magnitude must be 0 or above this

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
DEFAULT_OUT = os.path.join(REPO_ROOT, "src", "test", "resources", "probe_fixtures")


# --------------------------------------------------------------------------- custom modules


class CenterOverBatch(nn.Module):
    """Subtracts the batch mean (over dim 0): every sample depends on every other."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - x.mean(0, keepdim=True)


class CumsumOverBatch(nn.Module):
    """Cumulative sum over the batch (dim 0): sample i depends on samples 0..i."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.cumsum(0)


class AttentionAcrossBatch(nn.Module):
    """[B, E] embeddings; self-attention with the batch as the sequence (x.unsqueeze(1): sequence
    length B, batch 1), then a Linear head."""

    def __init__(self, embed: int, heads: int, out: int):
        super().__init__()
        self.proj = nn.Linear(embed, embed)
        self.attn = nn.MultiheadAttention(embed, heads)
        self.head = nn.Linear(embed, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.proj(x).unsqueeze(1)
        a = self.attn(h, h, h, need_weights=False)[0]
        return self.head(a.squeeze(1))


class FoldBatchIntoFeatures(nn.Module):
    """Flattens the whole batch into one row, multiplies by a [B*k, B*k] parameter and reshapes
    back to [B, k]: every output depends on every sample (works only for batch size B)."""

    def __init__(self, batch: int, k: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(batch * k, batch * k) / float(batch * k) ** 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.size(0)
        return (x.reshape(1, -1) @ self.weight).reshape(b, -1)


class CenterOverDim1(nn.Module):
    """Subtracts the mean over dim 1 (the batch dim of time-first [T, B, F] data)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - x.mean(1, keepdim=True)


class TransposeBackLinear(nn.Module):
    """Linear on x.transpose(0, 1) ([B, B, F] input), transposed back: no mixing."""

    def __init__(self, fin: int, fout: int):
        super().__init__()
        self.fc = nn.Linear(fin, fout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.transpose(0, 1)).transpose(0, 1)


class TimeFirstLSTM(nn.Module):
    """LSTM on time-first [T, B, F] input, then a Linear head on every step."""

    def __init__(self, fin: int, hidden: int, out: int):
        super().__init__()
        self.lstm = nn.LSTM(fin, hidden)
        self.head = nn.Linear(hidden, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.lstm(x)[0])


class MeanOverTokens(nn.Module):
    """Mean over dim 1 (the tokens of [B, T, E]): per sample, no mixing."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(1)


class TwoInput(nn.Module):
    def __init__(self):
        super().__init__()
        self.fa = nn.Linear(5, 3)
        self.fb = nn.Linear(4, 3)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.fa(a) + torch.tanh(self.fb(b))


class CenterOverFeatures(nn.Module):
    """Subtracts each sample's mean over its features (dim 1 of [B, F]): per sample, no mixing."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - x.mean(1, keepdim=True)


class ResidualBlock(nn.Module):
    """Linear(8,8) followed by the given mixing (or per-sample) module."""

    def __init__(self, mix: nn.Module):
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.mix = mix

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mix(self.fc(x))


class ResidualNet(nn.Module):
    """Not a chain: h = proj(x); head(h + block(h)), with the nested ResidualBlock."""

    def __init__(self, mix: nn.Module):
        super().__init__()
        self.proj = nn.Linear(6, 8)
        self.block = ResidualBlock(mix)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.proj(x)
        return self.head(h + self.block(h))


# --------------------------------------------------------------------------- cases

VOCAB = 20


def perturb_affine_(module):
    """Moves norm-layer affine parameters away from their trivial init (1, 0)."""
    with torch.no_grad():
        module.weight.copy_(1.0 + 0.3 * torch.randn_like(module.weight))
        module.bias.copy_(0.3 * torch.randn_like(module.bias))
    return module


def batchnorm_mlp():
    bn = perturb_affine_(nn.BatchNorm1d(8))
    with torch.no_grad():
        bn.running_mean.copy_(0.5 * torch.randn_like(bn.running_mean))
        bn.running_var.copy_(0.5 + torch.rand_like(bn.running_var))
        bn.num_batches_tracked.fill_(10)
    return nn.Sequential(nn.Linear(6, 8), bn, nn.Linear(8, 3)), torch.randn(6, 6)


def case_specs():
    """(name, description, build, options). Each build runs after torch.manual_seed(0) and returns
    (model, x); options: bd (batch dim, default 0), train (save in train mode), pattern (expected
    leak_pattern, default "none"), mixing_module, deterministic (default True)."""

    def subtract_batch_mean():
        return nn.Sequential(nn.Linear(6, 8), CenterOverBatch(), nn.Linear(8, 3)), torch.randn(5, 6)

    def cumsum_over_batch():
        return nn.Sequential(nn.Linear(6, 8), CumsumOverBatch(), nn.Linear(8, 3)), torch.randn(5, 6)

    def attention_across_batch():
        return AttentionAcrossBatch(8, 2, 3), torch.randn(5, 8)

    def fold_batch_into_features():
        model = nn.Sequential(nn.Linear(6, 4), FoldBatchIntoFeatures(5, 4), nn.Linear(4, 3))
        return model, torch.randn(5, 6)

    def embedding_batch_mean():
        model = nn.Sequential(nn.Embedding(VOCAB, 8), CenterOverBatch(), nn.Linear(8, 3))
        return model, torch.randint(0, VOCAB, (5, 7))

    def time_first_mixing():
        model = nn.Sequential(nn.Linear(6, 8), CenterOverDim1(), nn.Linear(8, 3))
        return model, torch.randn(4, 5, 6)

    def mlp():
        return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3)), torch.randn(5, 6)

    def cnn():
        model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
        return model, torch.randn(4, 2, 8, 8)

    def transpose_back_linear():
        return TransposeBackLinear(6, 3), torch.randn(5, 5, 6)

    def time_first_lstm():
        return TimeFirstLSTM(6, 8, 3), torch.randn(4, 5, 6)

    def embedding_clean():
        model = nn.Sequential(nn.Embedding(VOCAB, 8), MeanOverTokens(), nn.Linear(8, 3))
        return model, torch.randint(0, VOCAB, (5, 7))

    def layernorm_seq():
        model = nn.Sequential(nn.Linear(6, 8), perturb_affine_(nn.LayerNorm(8)), nn.Linear(8, 3))
        return model, torch.randn(4, 5, 6)

    def two_input():
        return TwoInput(), (torch.randn(5, 5), torch.randn(5, 4))

    def dropout_train():
        return nn.Sequential(nn.Linear(6, 8), nn.Dropout(0.5), nn.Linear(8, 3)), torch.randn(5, 6)

    def residual_nested_mixing():
        return ResidualNet(CenterOverBatch()), torch.randn(5, 6)

    def residual_nested_clean():
        return ResidualNet(CenterOverFeatures()), torch.randn(5, 6)

    return [
        # ---- mixing
        ("subtract_batch_mean",
         "Linear(6,8), CenterOverBatch (x - x.mean(0)), Linear(8,3): every sample leaks into all",
         subtract_batch_mean, dict(pattern="all", mixing_module="1")),
        ("cumsum_over_batch",
         "Linear(6,8), x.cumsum(0), Linear(8,3): sample i depends on the samples before it",
         cumsum_over_batch, dict(pattern="earlier", mixing_module="1")),
        ("attention_across_batch",
         "Linear(8,8), MultiheadAttention(8, 2 heads) over x.unsqueeze(1) (the batch is the "
         "sequence), Linear(8,3)",
         attention_across_batch, dict(pattern="all", mixing_module="attn")),
        ("batchnorm_train",
         "Linear(6,8), BatchNorm1d(8) in TRAIN mode (batch statistics), Linear(8,3); saved in "
         "train mode",
         batchnorm_mlp, dict(pattern="all", mixing_module="1", train=True)),
        ("fold_batch_into_features",
         "Linear(6,4), x.reshape(1, -1) @ W[20,20] reshaped back to [B, 4], Linear(4,3); runs "
         "only at batch size 5",
         fold_batch_into_features, dict(pattern="all", mixing_module="1")),
        ("embedding_batch_mean",
         "int64 ids [B, T]: Embedding(20,8), subtract the batch mean, Linear(8,3)",
         embedding_batch_mean, dict(pattern="all", mixing_module="1")),
        ("time_first_mixing",
         "time-first [T, B, F] (batch dim 1): Linear(6,8), x - x.mean(1), Linear(8,3)",
         time_first_mixing, dict(bd=1, pattern="all", mixing_module="1")),
        # ---- clean
        ("mlp", "Linear(6,16), ReLU, Linear(16,3)", mlp, {}),
        ("cnn", "Conv2d(2,4,3,pad 1), ReLU, MaxPool2d(2), Flatten, Linear(64,3)", cnn, {}),
        ("transpose_back_linear",
         "[B, B, F] input: Linear(6,3) on x.transpose(0, 1), transposed back (no mixing)",
         transpose_back_linear, {}),
        ("time_first_lstm", "time-first [T, B, F] (batch dim 1): LSTM(6,8), Linear(8,3)",
         time_first_lstm, dict(bd=1)),
        ("batchnorm_eval",
         "Linear(6,8), BatchNorm1d(8) in eval mode (running statistics), Linear(8,3): same "
         "weights as batchnorm_train",
         batchnorm_mlp, {}),
        ("embedding_clean",
         "int64 ids [B, T]: Embedding(20,8), mean over the tokens (dim 1), Linear(8,3)",
         embedding_clean, {}),
        ("layernorm_seq", "[B, T, F]: Linear(6,8), LayerNorm(8), Linear(8,3)", layernorm_seq, {}),
        ("two_input", "two inputs a [B,5], b [B,4]: Linear(5,3)(a) + tanh(Linear(4,3)(b))",
         two_input, {}),
        # ---- non-deterministic
        ("dropout_train",
         "Linear(6,8), Dropout(0.5) in TRAIN mode, Linear(8,3); saved in train mode: "
         "batch-independent but not deterministic",
         dropout_train, dict(train=True, deterministic=False)),
        # ---- not a chain: residual connection around a nested block (added last: TorchScript
        # numbers the classes it compiles across the run)
        ("residual_nested_mixing",
         "h = Linear(6,8)(x); Linear(8,3)(h + block(h)), block = Linear(8,8) then x - x.mean(0) "
         "(nested submodule block.mix): every sample leaks into all",
         residual_nested_mixing, dict(pattern="all", mixing_module="block.mix")),
        ("residual_nested_clean",
         "h = Linear(6,8)(x); Linear(8,3)(h + block(h)), block = Linear(8,8) then x - x.mean(1) "
         "(per-sample mean over the features): no mixing",
         residual_nested_clean, {}),
    ]


# --------------------------------------------------------------------------- measuring


def as_tuple(x):
    return x if isinstance(x, tuple) else (x,)


def own(t):
    """A compact copy that owns its storage (torch.save writes whole storages)."""
    return t.detach().clone().contiguous()


def flat_tensors(out):
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in flat_tensors(o)]
    return []  # None and the like


def is_batched(t, bd, B):
    return isinstance(t, torch.Tensor) and t.dim() > bd and t.shape[bd] == B


def out_rows(out, bd, B, strict):
    """The float outputs as one [B, n] matrix (batch first, each sample's elements in a row)."""
    rows = []
    for t in flat_tensors(out):
        if is_batched(t, bd, B) and t.is_floating_point():
            rows.append(t.movedim(bd, 0).reshape(B, -1))
        elif strict:
            sys.exit(f"output of shape {list(t.shape)} has no batch dim {bd} of size {B}")
    assert rows, "no batched float output"
    return torch.cat(rows, 1)


def jacobian_dependence(fn, args, kwargs, bd, B):
    """[B, B] float64: max |d out_i / d x_j| over the float batched arguments, or None."""
    pos = [k for k, a in enumerate(args) if is_batched(a, bd, B) and a.is_floating_point()]
    if not pos:
        return None
    firsts = tuple(args[k].detach().movedim(bd, 0).contiguous() for k in pos)

    def g(*ins):
        a = list(args)
        for k, t in zip(pos, ins):
            a[k] = t.movedim(0, bd)
        return out_rows(fn(*a, **kwargs), bd, B, strict=False)

    jac = torch.autograd.functional.jacobian(g, firsts)
    mag = torch.zeros(B, B, dtype=torch.float64)
    for j in jac:
        m = j.reshape(B, j.shape[1], B, -1).abs().amax(dim=(1, 3)).double()
        mag = torch.maximum(mag, m)
    return mag


def perturbation_dependence(fn, args, kwargs, bd, B):
    """[B, B] float64: max |out_i(x with sample j perturbed) - out_i(x)| (every batched argument's
    sample j changed at once). Float samples get + N(0, 1), integer ones (id + 1) % VOCAB and
    (id + 7) % VOCAB. The RNG is seeded the same before every forward."""
    pos = [k for k, a in enumerate(args) if is_batched(a, bd, B)]
    assert pos, "no batched argument"

    def run(a):
        torch.manual_seed(1234)
        with torch.no_grad():
            return out_rows(fn(*a, **kwargs), bd, B, strict=False).double()

    base = run(list(args))
    gen = torch.Generator().manual_seed(4321)
    mag = torch.zeros(B, B, dtype=torch.float64)
    for j in range(B):
        for shift in (1, 7):
            a = list(args)
            integer = False
            for k in pos:
                t = args[k].clone()
                s = t.select(bd, j)
                if t.is_floating_point():
                    s.add_(torch.randn(s.shape, generator=gen, dtype=t.dtype))
                else:
                    integer = True
                    s.copy_((s + shift) % VOCAB)
                a[k] = t
            mag[:, j] = torch.maximum(mag[:, j], (run(a) - base).abs().amax(1))
            if not integer:
                break
    return mag


def dependence(mag, where):
    """Boolean [B, B] from magnitudes; aborts unless every off-diagonal entry is clear-cut."""
    B = mag.shape[0]
    off = ~torch.eye(B, dtype=torch.bool)
    vague = off & (mag > 0) & (mag <= DEP_TOL)
    if vague.any():
        sys.exit(f"[{where}] ambiguous dependence magnitudes (0 < m <= {DEP_TOL}):\n{mag}")
    return (mag > 0) & off


def leak_pattern(dep):
    B = dep.shape[0]
    off = ~torch.eye(B, dtype=torch.bool)
    if not dep.any():
        return "none"
    if torch.equal(dep, off):
        return "all"
    if torch.equal(dep, torch.ones(B, B, dtype=torch.bool).tril(-1)):
        return "earlier"
    return "partial"


def measure(fn, args, kwargs, bd, B, where):
    """(dependence [B, B] bool, method): Jacobian where there are float batched arguments
    (cross-checked by perturbation), perturbation otherwise."""
    pert = dependence(perturbation_dependence(fn, args, kwargs, bd, B), where + " perturbation")
    jmag = jacobian_dependence(fn, args, kwargs, bd, B)
    if jmag is None:
        return pert, "perturbation"
    jac = dependence(jmag, where + " jacobian")
    if not torch.equal(jac, pert):
        sys.exit(f"[{where}] Jacobian and perturbation disagree:\n{jac.int()}\n{pert.int()}")
    return jac, "input_gradient"


def submodule_calls(model, x):
    """[(name, args, kwargs)] of every non-root submodule call of one eager forward, in the order
    the calls start."""
    calls, handles = [], []
    for name, m in model.named_modules():
        if name == "":
            continue

        def hook(mod, args, kwargs, name=name):
            calls.append((name, tuple(a.detach().clone() if isinstance(a, torch.Tensor) else a
                                      for a in args), dict(kwargs)))

        handles.append(m.register_forward_pre_hook(hook, with_kwargs=True))
    try:
        torch.manual_seed(0)
        with torch.no_grad():
            model(*as_tuple(x))
    finally:
        for h in handles:
            h.remove()
    return calls


# --------------------------------------------------------------------------- driver


def make_case(out_dir, name, description, build, opts, log):
    torch.manual_seed(0)
    model, x = build()
    bd = opts.get("bd", 0)
    train = opts.get("train", False)
    expect_pattern = opts.get("pattern", "none")
    expect_module = opts.get("mixing_module")
    deterministic = opts.get("deterministic", True)
    assert (expect_pattern == "none") == (expect_module is None), name
    model.train(train)
    x = tuple(own(t) for t in x) if isinstance(x, tuple) else own(x)
    xs = as_tuple(x)
    x_orig = tuple(own(t) for t in xs)
    B = xs[0].shape[bd]
    assert 4 <= B <= 6 and all(t.shape[bd] == B for t in xs), name
    integer = not xs[0].is_floating_point()
    assert all(t.is_floating_point() != integer for t in xs), name

    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "model.pt")
    eager = copy.deepcopy(model)  # the eager copy the checks run (train mode mutates buffers)
    scripted = torch.jit.script(model)
    scripted.save(path)
    torch.save(x, os.path.join(d, "x.pt"))

    def load():
        m = torch.jit.load(path)
        if m.training != train:
            sys.exit(f"[{name}] loaded module training={m.training}, expected {train}")
        for sub, em in eager.named_modules():
            if dict(m.named_modules())[sub].training != em.training:
                sys.exit(f"[{name}] loaded submodule {sub!r} is in the wrong mode")
        return m

    loaded = load()
    if [k for k, _ in loaded.named_parameters()] != [k for k, _ in eager.named_parameters()]:
        sys.exit(f"[{name}] parameter names differ after scripting")
    xl = torch.load(os.path.join(d, "x.pt"))
    if not all(torch.equal(a, b) for a, b in zip(as_tuple(xl), xs)) or type(xl) is not type(x):
        sys.exit(f"[{name}] x.pt does not load back as saved")

    # Same output as the eager module (same RNG state: dropout draws the same mask).
    with torch.no_grad():
        torch.manual_seed(7)
        oe = copy.deepcopy(eager)(*xs)
        torch.manual_seed(7)
        ol = load()(*xs)
    if not torch.equal(oe, ol):
        sys.exit(f"[{name}] TorchScript output differs from eager: "
                 f"max abs diff {float((oe - ol).abs().max()):.3e}")

    # Determinism: two forwards of the loaded module, RNG not reseeded in between.
    with torch.no_grad():
        torch.manual_seed(11)
        m = load()
        o1, o2 = m(*xs), m(*xs)
    measured_det = torch.equal(o1, o2)
    if measured_det != deterministic:
        sys.exit(f"[{name}] deterministic: recorded {deterministic}, measured {measured_det}")

    # Batch mixing of the whole loaded module.
    dep, method = measure(load(), xs, {}, bd, B, name)
    pattern = leak_pattern(dep)
    if pattern != expect_pattern:
        sys.exit(f"[{name}] leak pattern: expected {expect_pattern}, measured {pattern}:\n"
                 f"{dep.int()}")
    probes = sorted({0, 1, B - 1})
    leaks = {str(i): [j for j in range(B) if dep[i, j]] for i in probes}

    # Where the mixing first happens: each submodule of the loaded module, on the arguments it
    # gets in an eager forward.
    mixing = []
    for sub, args, kwargs in submodule_calls(copy.deepcopy(eager), x):
        fn = dict(load().named_modules())[sub]
        if not hasattr(fn, "forward"):  # overloaded forward (scripted nn.LSTM): the eager one
            fn = dict(copy.deepcopy(eager).named_modules())[sub]
        sdep, _ = measure(fn, args, kwargs, bd, B, f"{name} / {sub}")
        if sdep.any() and sub not in mixing:
            mixing.append(sub)
    innermost = [s for s in mixing if not any(o.startswith(s + ".") for o in mixing)]
    first = innermost[0] if innermost else None
    if first != expect_module:
        sys.exit(f"[{name}] mixing module: expected {expect_module!r}, measured {first!r} "
                 f"(mixing submodules: {mixing})")
    if not all(torch.equal(a, b) for a, b in zip(xs, x_orig)):
        sys.exit(f"[{name}] the input changed while making the case")

    log(f"[{name}] B={B} bd={bd} {method}: leaks {leaks} ({pattern}); mixing module {first}; "
        f"deterministic {measured_det}")
    return {
        "name": name,
        "description": description,
        "inputs": ["x.pt"],
        "multi_input": isinstance(x, tuple),
        "batch_dim": bd,
        "batch_size": B,
        "input_shapes": [list(t.shape) for t in xs],
        "integer_input": integer,
        "training": train,
        "sequential": isinstance(eager, nn.Sequential),
        "mixes": pattern != "none",
        "mixing_module": first,
        "leaks": leaks,
        "leak_pattern": pattern,
        "leaks_method": method,
        "deterministic": measured_det,
    }


def main():

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import fixture_tools

    out_dir, quiet = fixture_tools.start(__doc__, DEFAULT_OUT, __file__, REPO_ROOT, "PSG4J_PROBE_FIXTURES_CHILD")

    torch.set_num_threads(1)  # reproducible reductions
    torch.use_deterministic_algorithms(True)

    before = fixture_tools.digest_tree(out_dir) if os.path.isdir(out_dir) else {}
    os.makedirs(out_dir, exist_ok=True)
    log = (lambda s: None) if quiet else print

    specs = case_specs()
    names = [s[0] for s in specs]
    assert len(names) == len(set(names)), "duplicate case names"
    manifest = [make_case(out_dir, *spec, log) for spec in specs]
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")

    after = fixture_tools.digest_tree(out_dir)
    stale = fixture_tools.stale_files(after, names)
    if stale:
        log(f"note: files not written by this run (stale?): {stale}")
    total = sum(os.path.getsize(os.path.join(out_dir, p)) for p in after)
    log(f"{len(manifest)} cases; wrote {len(after)} files, {total} bytes total into {out_dir}")
    if total >= MAX_BYTES:
        sys.exit(f"probe fixtures too large: {total} bytes")
    if before:
        log(fixture_tools.regeneration_report(before, after))


if __name__ == "__main__":
    main()
