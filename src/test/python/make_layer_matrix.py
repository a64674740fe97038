#!/usr/bin/env python3
"""Generate the layer-matrix test fixtures for psg4j's vmap-based per-sample-gradient engine.

Run with the project's Python environment (torch 2.10.0):

    /root/.cache/psg4j/pyenv/bin/python src/test/python/make_layer_matrix.py [--out DIR] [--quiet]

Writes into src/test/resources/layer_matrix/ (relative to the repository root) one folder per
case, modelled on Opacus's own grad-sample tests (opacus/tests/grad_samples/): convolutions
(1-3d, transposed, stride/padding/dilation/groups/bias), Linear on 2-4-d and time-first input,
Bilinear, Embedding, EmbeddingBag, the normalisation layers, RNN/GRU/LSTM (with the default and
with an explicit initial hidden state), MultiheadAttention, a few small composite models, and
(last) three scripted models that psg4j's vmap engine must refuse:

    <case>/model.pt       TorchScript module (eval mode); torch.jit.script, or torch.jit.trace
                          where scripting fails (manifest field "scripted")
    <case>/x.pt           input tensor, or tuple of tensors (multi-input)
    <case>/y.pt           target tensor (only where the loss needs one)
    <case>/grads_sum.pt   {param name: Tensor[B, *shape]} reference per-sample grads, reduction 'sum'
    <case>/grads_mean.pt  same, loss reduction 'mean'
    manifest.json         JSON array, one object per case: name, layer, config, inputs, multi_input,
        batch_dim, batch_size, loss, target, scripted, func_vmap, func_vmap_error (null or the
        error's first line), func_vmap_fallback_ops (aten ops vmap ran through its slow
        per-sample fallback: no batching rule, but correct), expect_vmap, unsupported_op,
        engine_vmap, engine_unsupported_op, param_names, param_shapes.
      expect_vmap: what torch.func's vmap does: "pass", or "unsupported" (then the stored grads
        come from the microbatch loop): the RNN/GRU cases from the layer's default (None) initial
        hidden state (functorch cannot vmap ATen's RNN/GRU kernels so with shared, in_dims None,
        parameters; their *_h0 twins, LSTM too, pass a zero state made from the input, batched
        like it, and vmap), data_dependent_branch (`if bool(h.sum() > 0)`), item_scale (.item()).
      unsupported_op: for "unsupported" cases the ATen op that fails ("aten::rnn_tanh",
        "aten::rnn_relu", "aten::gru", "aten::item"), else null: checked to run where torch.func
        failed and (like engine_unsupported_op) to be in the module's inlined graph or run by it.
      engine_vmap: what psg4j's own vmap engine (torch.func's vmap(grad) in C++; it retries with
        per-sample parameters) is expected to do: "pass" for all cases, the RNN/GRU ones included,
        but the last three, which it refuses ("unsupported"): data_dependent_branch, item_scale
        and inplace_input_write (x.mul_(2.0): torch.func's grad wraps inputs, psg4j's does not).
      engine_unsupported_op: null, or the failing ATen op, which the engine's error must contain.

Definition of the reference per-sample gradient of sample i (as in make_fixtures.py): the gradient
of the loss of a batch holding ONLY sample i (every input x.select(bd, i).unsqueeze(bd), bd = batch
dim of the inputs; the target y[i:i+1], targets are batched along dim 0), with the torch loss
reduction applied to that one-sample batch; a model that writes into its input gets copies. Computed
with torch.func.vmap(torch.func.grad(...)) over torch.func.functional_call on the eager module and
checked against an explicit microbatch loop (torch.autograd.grad per sample); the script aborts if
they disagree (atol 1e-6, rtol 1e-5). Where torch.func cannot vmap a case, the case is kept with
"func_vmap": false and the error in "func_vmap_error", and the microbatch grads are stored; the
script aborts unless that matches the case's expect_vmap ("unsupported" exactly where func_vmap is
false). Each *_h0 case has the same weights and input as its default-state twin and must store the
same grads (same tolerances). Further checks: the saved TorchScript module (loaded back) computes
the same output as the eager module, and a microbatch loop over it reproduces the stored grads; the
'sum' per-sample grads add up to the full-batch gradient (eval mode; not for data_dependent_branch
and item_scale, whose forward depends on the whole batch); every parameter gets a non-zero gradient.

Loss conventions:
    l1            nn.L1Loss(reduction)(out, zeros_like(out))
    mse           nn.MSELoss(reduction)(out, y)
    cross_entropy nn.CrossEntropyLoss(reduction)(out, y), int64 class targets, classes in dim 1
    sum           out.sum() for 'sum'; out.sum() / N for 'mean' (N = batch size of that batch)

The script is deterministic: running it again rewrites byte-identical files (it checks that
nothing changed when files already exist and reports it).
"""

import json
import os
import re
import sys
import warnings

import torch
import torch.nn as nn
from torch.func import functional_call, grad, vmap

ATOL = 1e-6
RTOL = 1e-5
MAX_BYTES = int(1.5 * 1024 * 1024)

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
DEFAULT_OUT = os.path.join(REPO_ROOT, "src", "test", "resources", "layer_matrix")


# --------------------------------------------------------------------------- wrappers


class RecurrentOut(nn.Module):
    """RNN / GRU / LSTM returning only the output sequence."""

    def __init__(self, rnn: nn.Module):
        super().__init__()
        self.rnn = rnn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x)[0]


class RecurrentOutH0(nn.Module):
    """RNN / GRU / LSTM called with an explicit zero initial state, returning the output sequence.

    The zero state is computed from the input (zeros + zeros_like(x).sum()), so that under vmap it
    is batched like the input: functorch cannot vmap ATen's RNN/GRU kernels from the unbatched
    default (None) state.
    """

    def __init__(self, rnn: nn.Module):
        super().__init__()
        self.rnn = rnn
        self.state_layers = rnn.num_layers * (2 if rnn.bidirectional else 1)
        self.hidden = rnn.hidden_size
        self.batch_first = rnn.batch_first

    def zero_state(self, x: torch.Tensor) -> torch.Tensor:
        n = x.size(0) if self.batch_first else x.size(1)
        return (torch.zeros(self.state_layers, n, self.hidden, dtype=x.dtype)
                + torch.zeros_like(x).sum())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x, self.zero_state(x))[0]


class LSTMOutH0(RecurrentOutH0):
    """LSTM called with explicit zero (h0, c0) made like RecurrentOutH0's, output sequence only."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x, (self.zero_state(x), self.zero_state(x)))[0]


class SelfAttention(nn.Module):
    """nn.MultiheadAttention as self-attention, returning only the attention output."""

    def __init__(self, mha: nn.MultiheadAttention):
        super().__init__()
        self.mha = mha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mha(x, x, x, need_weights=False)[0]


class TwoBranch(nn.Module):
    def __init__(self):
        super().__init__()
        self.fa = nn.Linear(5, 3)
        self.fb = nn.Linear(4, 3)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.fa(a) + torch.tanh(self.fb(b))


class DataDependentBranch(nn.Module):
    """Linear(5,3), then a sign flip that the data decides: data-dependent control flow."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)
        if bool(h.sum() > 0):
            h = -h
        return h


class ItemScale(nn.Module):
    """Linear(5,3), scaled by a Python float read from its (detached) output with .item()."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)
        return h * float(h.detach().abs().max().item())


class InplaceInputWrite(nn.Module):
    """Doubles its input in place (x.mul_(2.0): the caller's tensor changes), then Linear(5,3)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x.mul_(2.0)
        return self.fc(x)


# --------------------------------------------------------------------------- losses


def loss_of(kind, reduction, out, y, batch_size):
    if kind == "l1":
        return nn.L1Loss(reduction=reduction)(out, torch.zeros_like(out))
    if kind == "mse":
        return nn.MSELoss(reduction=reduction)(out, y)
    if kind == "cross_entropy":
        return nn.CrossEntropyLoss(reduction=reduction)(out, y)
    if kind == "sum":
        return out.sum() if reduction == "sum" else out.sum() / batch_size
    raise ValueError(kind)


# --------------------------------------------------------------------------- helpers


def as_tuple(x):
    return x if isinstance(x, tuple) else (x,)


def own(t):
    """A compact copy that owns its storage (torch.save writes whole storages)."""
    return t.detach().clone().contiguous()


def save(obj, path):
    torch.save(obj, path)


def clean_error(e):
    """First line of an exception, without memory addresses (the manifest must be reproducible)."""
    msg = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
    return re.sub(r"0x[0-9a-fA-F]+", "0x?", msg)[:300]


def fresh_inputs(x, fresh):
    """The inputs as a tuple; copies of them where the model writes into its input (fresh)."""
    return tuple(t.clone() for t in as_tuple(x)) if fresh else as_tuple(x)


def func_grads(model, x, y, loss_kind, reduction, bd, fresh=False):
    """Per-sample grads via vmap(grad(functional_call)) over one-sample batches."""
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}
    xs = fresh_inputs(x, fresh)

    def one_sample_loss(p, xi, yi):
        # xi: tuple of per-sample slices (batch dim removed by vmap); re-add it.
        inputs = tuple(t.unsqueeze(bd) for t in xi)
        out = functional_call(model, (p, buffers), inputs)
        yb = None if yi is None else yi.unsqueeze(0)
        return loss_of(loss_kind, reduction, out, yb, 1)

    in_x = tuple(bd for _ in xs)
    if y is None:
        f = lambda p, xi: one_sample_loss(p, xi, None)  # noqa: E731
        g = vmap(grad(f), in_dims=(None, in_x))(params, xs)
    else:
        g = vmap(grad(one_sample_loss), in_dims=(None, in_x, 0))(params, xs, y)
    return {k: own(g[k]) for k, _ in model.named_parameters()}


def loop_grads(model, x, y, loss_kind, reduction, bd, B, fresh=False):
    """Explicit microbatch loop: torch.autograd.grad on each one-sample batch (fresh: on copies
    of the samples, like psg4j's reference, for a model that writes into its input)."""
    names = [k for k, _ in model.named_parameters()]
    params = [p for _, p in model.named_parameters()]
    per = {k: [] for k in names}
    for i in range(B):
        xi = fresh_inputs(tuple(t.select(bd, i).unsqueeze(bd) for t in as_tuple(x)), fresh)
        yi = None if y is None else y[i : i + 1]
        out = model(*xi)
        loss = loss_of(loss_kind, reduction, out, yi, 1)
        gs = torch.autograd.grad(loss, params)
        for k, gk in zip(names, gs):
            per[k].append(gk.detach())
    return {k: own(torch.stack(v, 0)) for k, v in per.items()}


def batch_grads(model, x, y, loss_kind, bd, fresh=False):
    """Gradient of the 'sum' loss of the whole batch (= sum of the 'sum' per-sample grads where
    the model is batch-independent)."""
    names = [k for k, _ in model.named_parameters()]
    params = [p for _, p in model.named_parameters()]
    B = as_tuple(x)[0].shape[bd]
    loss = loss_of(loss_kind, "sum", model(*fresh_inputs(x, fresh)), y, B)
    return dict(zip(names, torch.autograd.grad(loss, params)))


def graph_ops(module):
    """The op names (node kinds) of a TorchScript module's inlined graph, nested blocks included."""
    ops = set()

    def walk(nodes):
        for n in nodes:
            ops.add(n.kind())
            for b in n.blocks():
                walk(b.nodes())

    walk(module.inlined_graph.nodes())
    return ops


def profiled(fn):
    """Runs fn() under the autograd profiler: (the names of the ops it dispatched, the chain of
    ops that were running when it raised, outermost first, or [] if it did not raise)."""
    error = None
    with torch.autograd.profiler.profile() as prof:
        try:
            fn()
        except Exception as e:  # noqa: BLE001
            error = e
    events = [e for e in prof.function_events if e.name.startswith("aten::")]
    chain = []
    if error is not None and events:
        # Nothing starts after the throw: the op started last threw, its parents were running.
        ev = max(events, key=lambda e: (e.time_range.start, -e.time_range.end))
        while ev is not None:
            # each functorch level dispatches an op again: name it once
            if ev.name.startswith("aten::") and (not chain or chain[0] != ev.name):
                chain.insert(0, ev.name)
            ev = ev.cpu_parent
    return {e.name for e in events}, chain


def max_abs_diff(a, b):
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


def all_close(a, b, atol=ATOL, rtol=RTOL):
    return a.keys() == b.keys() and all(
        a[k].shape == b[k].shape and torch.allclose(a[k], b[k], atol=atol, rtol=rtol)
        for k in a
    )


def fmt(v):
    if isinstance(v, tuple):
        return "(" + ",".join(str(e) for e in v) + ")"
    return str(v)


def perturb_affine_(module):
    """Move norm-layer affine parameters away from their trivial init (1, 0)."""
    with torch.no_grad():
        if getattr(module, "weight", None) is not None:
            module.weight.copy_(1.0 + 0.3 * torch.randn_like(module.weight))
        if getattr(module, "bias", None) is not None:
            module.bias.copy_(0.3 * torch.randn_like(module.bias))
    return module


def random_running_stats_(bn):
    with torch.no_grad():
        bn.running_mean.copy_(0.5 * torch.randn_like(bn.running_mean))
        bn.running_var.copy_(0.5 + torch.rand_like(bn.running_var))
        bn.num_batches_tracked.fill_(10)
    return bn


# --------------------------------------------------------------------------- cases


def case(name, layer, config, build):
    return (name, layer, config, build)


def conv_case(name, dim, cin, cout, k, spatial, B=3, loss="l1", **kw):
    cls = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dim]
    cfg = ",".join(f"{a}={fmt(v)}" for a, v in kw.items())
    cfg = f"in={cin},out={cout},k={fmt(k)}" + ("," + cfg if cfg else "")

    def build():
        model = cls(cin, cout, k, **kw)
        x = torch.randn(B, cin, *spatial)
        y = None
        if loss == "mse":
            with torch.no_grad():
                y = torch.randn_like(model(x))
        return dict(model=model, x=x, y=y, loss=loss, bd=0)

    return case(name, cls.__name__, cfg, build)


def convt_case(name, dim, cin, cout, k, spatial, B=3, loss="l1", **kw):
    cls = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}[dim]
    cfg = ",".join(f"{a}={fmt(v)}" for a, v in kw.items())
    cfg = f"in={cin},out={cout},k={fmt(k)}" + ("," + cfg if cfg else "")

    def build():
        model = cls(cin, cout, k, **kw)
        x = torch.randn(B, cin, *spatial)
        return dict(model=model, x=x, y=None, loss=loss, bd=0)

    return case(name, cls.__name__, cfg, build)


def recurrent_case(name, kind, I, H, T, B, batch_first, loss="l1", h0=False, twin=None, **kw):
    """h0: pass an explicit zero initial state made from the input (RecurrentOutH0 / LSTMOutH0);
    twin: the default-state case with the same configuration (same weights and input)."""
    cls = {"RNN": nn.RNN, "GRU": nn.GRU, "LSTM": nn.LSTM}[kind]
    cfg = ",".join([f"input={I},hidden={H}", f"batch_first={batch_first}"]
                   + [f"{a}={v}" for a, v in kw.items()]
                   + (["initial_state=explicit_zeros_from_input"] if h0 else []))
    expect, op = "pass", None
    if not h0 and kind != "LSTM":
        # functorch cannot vmap ATen's RNN/GRU kernels from the unbatched default state.
        expect = "unsupported"
        op = "aten::gru" if kind == "GRU" else f"aten::rnn_{kw.get('nonlinearity', 'tanh')}"

    def build():
        rnn = cls(I, H, batch_first=batch_first, **kw)
        model = (LSTMOutH0 if kind == "LSTM" else RecurrentOutH0)(rnn) if h0 else RecurrentOut(rnn)
        x = torch.randn(B, T, I) if batch_first else torch.randn(T, B, I)
        return dict(model=model, x=x, y=None, loss=loss, bd=0 if batch_first else 1,
                    expect_vmap=expect, unsupported_op=op, twin=twin)

    return case(name, kind, cfg, build)


def mha_case(name, E, heads, T, B, batch_first, loss="l1", **kw):
    cfg = ",".join([f"embed={E},heads={heads}", f"batch_first={batch_first}"]
                   + [f"{a}={v}" for a, v in kw.items()])

    def build():
        mha = nn.MultiheadAttention(E, heads, batch_first=batch_first, **kw)
        with torch.no_grad():  # default init zeroes the projection biases
            if mha.in_proj_bias is not None:
                mha.in_proj_bias.copy_(0.2 * torch.randn_like(mha.in_proj_bias))
            if mha.out_proj.bias is not None:
                mha.out_proj.bias.copy_(0.2 * torch.randn_like(mha.out_proj.bias))
        model = SelfAttention(mha)
        x = torch.randn(B, T, E) if batch_first else torch.randn(T, B, E)
        return dict(model=model, x=x, y=None, loss=loss, bd=0 if batch_first else 1)

    return case(name, "MultiheadAttention", cfg, build)


def case_specs():
    """Each builder runs after torch.manual_seed(0)."""
    cases = [
        # ---- Conv1d
        conv_case("conv1d_basic", 1, 2, 4, 3, (9,)),
        conv_case("conv1d_stride2_pad2_nobias", 1, 2, 4, 3, (9,), stride=2, padding=2, bias=False),
        conv_case("conv1d_same_dil2", 1, 3, 3, 3, (10,), padding="same", dilation=2, loss="mse"),
        conv_case("conv1d_valid_groups2", 1, 4, 6, 2, (8,), padding="valid", groups=2),
        conv_case("conv1d_depthwise_stride2", 1, 3, 6, 3, (11,), stride=2, groups=3, B=4),
        conv_case("conv1d_pad2_dil2_groups2", 1, 2, 4, 3, (7,), padding=2, dilation=2, groups=2,
                  loss="sum"),
        # ---- Conv2d
        conv_case("conv2d_basic", 2, 1, 3, 3, (6, 6)),
        conv_case("conv2d_stride2", 2, 2, 4, 3, (7, 7), stride=2),
        conv_case("conv2d_pad2_dil2", 2, 2, 3, 3, (6, 5), padding=2, dilation=2),
        conv_case("conv2d_same_k4", 2, 2, 3, 4, (5, 5), padding="same", loss="mse"),
        conv_case("conv2d_same_dil2_groups2", 2, 4, 4, 3, (6, 6), padding="same", dilation=2,
                  groups=2),
        conv_case("conv2d_valid_nobias", 2, 3, 2, 2, (5, 5), padding="valid", bias=False),
        conv_case("conv2d_groups2_stride2_pad2", 2, 4, 6, 3, (6, 6), stride=2, padding=2, groups=2,
                  B=2),
        conv_case("conv2d_depthwise", 2, 4, 4, 3, (5, 5), padding=1, groups=4),
        conv_case("conv2d_depthwise_x3_nobias", 2, 2, 6, 3, (6, 6), groups=2, bias=False,
                  loss="sum"),
        conv_case("conv2d_asym", 2, 2, 3, (2, 3), (7, 8), stride=(2, 1), padding=(1, 0),
                  dilation=(1, 2)),
        # ---- Conv3d
        conv_case("conv3d_basic", 3, 1, 2, 2, (4, 4, 4)),
        conv_case("conv3d_stride2_pad2", 3, 2, 2, 3, (5, 4, 4), stride=2, padding=2),
        conv_case("conv3d_same_dil2", 3, 2, 2, 3, (4, 3, 3), padding="same", dilation=2,
                  loss="mse", B=2),
        conv_case("conv3d_groups2_nobias", 3, 2, 4, 2, (4, 4, 3), groups=2, bias=False),
        conv_case("conv3d_depthwise_valid", 3, 3, 3, 2, (4, 3, 4), padding="valid", groups=3),
        # ---- ConvTranspose
        convt_case("convtranspose1d_stride2", 1, 2, 3, 3, (5,), stride=2),
        convt_case("convtranspose1d_groups2_outpad1", 1, 4, 2, 3, (6,), stride=2, padding=1,
                   output_padding=1, groups=2, B=4),
        convt_case("convtranspose2d_basic", 2, 2, 3, 3, (4, 4)),
        convt_case("convtranspose2d_stride2_pad1_outpad1", 2, 2, 2, 3, (4, 3), stride=2,
                   padding=1, output_padding=1, loss="sum"),
        convt_case("convtranspose2d_groups2_dil2_nobias", 2, 4, 4, 2, (3, 4), dilation=2,
                   groups=2, bias=False),
        convt_case("convtranspose3d_stride2", 3, 2, 2, 2, (3, 3, 2), stride=2, B=2),
        convt_case("convtranspose3d_groups2", 3, 2, 4, 3, (3, 2, 3), groups=2, padding=1),
    ]

    # ---- Linear / Bilinear
    def linear_2d():
        model = nn.Linear(6, 4)
        x = torch.randn(4, 6)
        y = torch.randn(4, 4)
        return dict(model=model, x=x, y=y, loss="mse", bd=0)

    def linear_3d():
        return dict(model=nn.Linear(5, 3), x=torch.randn(3, 4, 5), y=None, loss="l1", bd=0)

    def linear_4d_nobias():
        return dict(model=nn.Linear(4, 3, bias=False), x=torch.randn(2, 3, 2, 4), y=None,
                    loss="l1", bd=0)

    def linear_time_first():
        return dict(model=nn.Linear(5, 3), x=torch.randn(4, 3, 5), y=None, loss="l1", bd=1)

    def bilinear():
        model = nn.Bilinear(3, 4, 2)
        x = (torch.randn(4, 3), torch.randn(4, 4))
        y = torch.randn(4, 2)
        return dict(model=model, x=x, y=y, loss="mse", bd=0)

    cases += [
        case("linear_2d", "Linear", "in=6,out=4,input=[B,6]", linear_2d),
        case("linear_3d", "Linear", "in=5,out=3,input=[B,4,5]", linear_3d),
        case("linear_4d_nobias", "Linear", "in=4,out=3,bias=False,input=[B,3,2,4]",
             linear_4d_nobias),
        case("linear_time_first", "Linear", "in=5,out=3,input=[T,B,5],batch_dim=1",
             linear_time_first),
        case("bilinear", "Bilinear", "in1=3,in2=4,out=2", bilinear),
    ]

    # ---- Embedding / EmbeddingBag
    def embedding():
        return dict(model=nn.Embedding(10, 4), x=torch.randint(0, 10, (4, 5)), y=None,
                    loss="l1", bd=0)

    def embedding_padding_idx():
        x = torch.randint(0, 8, (3, 6))
        x[:, -1] = 0  # every sample uses the padding index (its row gets no gradient)
        x[0, 0] = 3
        x[1, 1] = 3  # shared index between samples
        return dict(model=nn.Embedding(8, 3, padding_idx=0), x=x, y=None, loss="sum", bd=0)

    def embedding_bag(mode):
        def build():
            x = torch.randint(0, 12, (4, 3))
            x[0, 0] = x[0, 1]  # an index repeated within one bag
            return dict(model=nn.EmbeddingBag(12, 5, mode=mode), x=x, y=None, loss="l1", bd=0)

        return build

    cases += [
        case("embedding", "Embedding", "num=10,dim=4,input=[B,5]", embedding),
        case("embedding_padding_idx", "Embedding", "num=8,dim=3,padding_idx=0,input=[B,6]",
             embedding_padding_idx),
        case("embedding_bag_sum", "EmbeddingBag", "num=12,dim=5,mode=sum,input=[B,3]",
             embedding_bag("sum")),
        case("embedding_bag_mean", "EmbeddingBag", "num=12,dim=5,mode=mean,input=[B,3]",
             embedding_bag("mean")),
    ]

    # ---- normalisation layers
    def layernorm():
        return dict(model=perturb_affine_(nn.LayerNorm(6)), x=torch.randn(3, 4, 6), y=None,
                    loss="l1", bd=0)

    def layernorm_2dims():
        model = perturb_affine_(nn.LayerNorm([3, 4]))
        x = torch.randn(3, 2, 3, 4)
        y = torch.randn(3, 2, 3, 4)
        return dict(model=model, x=x, y=y, loss="mse", bd=0)

    def groupnorm(groups, C):
        def build():
            return dict(model=perturb_affine_(nn.GroupNorm(groups, C)),
                        x=torch.randn(3, C, 3, 4), y=None, loss="l1", bd=0)

        return build

    def instancenorm(dim):
        cls = {1: nn.InstanceNorm1d, 2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}[dim]
        spatial = {1: (7,), 2: (4, 5), 3: (3, 4, 3)}[dim]

        def build():
            return dict(model=perturb_affine_(cls(3, affine=True)),
                        x=torch.randn(3, 3, *spatial), y=None, loss="l1", bd=0)

        return build

    def batchnorm1d():
        model = nn.Sequential(nn.Linear(5, 4), random_running_stats_(perturb_affine_(
            nn.BatchNorm1d(4))))
        return dict(model=model, x=torch.randn(4, 5), y=None, loss="l1", bd=0)

    def batchnorm1d_seq():
        model = random_running_stats_(perturb_affine_(nn.BatchNorm1d(3)))
        return dict(model=model, x=torch.randn(3, 3, 6), y=None, loss="l1", bd=0)

    def batchnorm2d():
        model = nn.Sequential(nn.Conv2d(2, 3, 3), random_running_stats_(perturb_affine_(
            nn.BatchNorm2d(3))), nn.ReLU())
        return dict(model=model, x=torch.randn(3, 2, 5, 5), y=None, loss="l1", bd=0)

    cases += [
        case("layernorm", "LayerNorm", "normalized_shape=[6],input=[B,4,6]", layernorm),
        case("layernorm_2dims", "LayerNorm", "normalized_shape=[3,4],input=[B,2,3,4]",
             layernorm_2dims),
        case("groupnorm_g2", "GroupNorm", "groups=2,channels=4", groupnorm(2, 4)),
        case("groupnorm_g1", "GroupNorm", "groups=1,channels=3", groupnorm(1, 3)),
        case("groupnorm_gC", "GroupNorm", "groups=3,channels=3", groupnorm(3, 3)),
        case("instancenorm1d", "InstanceNorm1d", "channels=3,affine=True", instancenorm(1)),
        case("instancenorm2d", "InstanceNorm2d", "channels=3,affine=True", instancenorm(2)),
        case("instancenorm3d", "InstanceNorm3d", "channels=3,affine=True", instancenorm(3)),
        case("batchnorm1d_eval", "BatchNorm1d", "Linear(5,4)+BatchNorm1d(4),eval,input=[B,5]",
             batchnorm1d),
        case("batchnorm1d_eval_3d", "BatchNorm1d", "channels=3,eval,input=[B,3,6]",
             batchnorm1d_seq),
        case("batchnorm2d_eval", "BatchNorm2d", "Conv2d(2,3,3)+BatchNorm2d(3)+ReLU,eval",
             batchnorm2d),
    ]

    # ---- recurrent layers (forward returns only the output sequence, default initial state: the
    # RNN/GRU ones are not vmappable, expect_vmap "unsupported"; see the *_h0 cases at the end)
    recurrent = [  # name, kind, input, hidden, T, B, batch_first, options
        ("rnn_batch_first", "RNN", 3, 4, 5, 3, True, {}),
        ("rnn_time_first_2layer_relu", "RNN", 3, 4, 4, 3, False,
         dict(num_layers=2, nonlinearity="relu")),
        ("gru_batch_first_2layer", "GRU", 3, 4, 4, 3, True, dict(num_layers=2)),
        ("gru_time_first_bidirectional", "GRU", 3, 3, 4, 2, False, dict(bidirectional=True)),
        ("lstm_batch_first", "LSTM", 3, 4, 5, 3, True, dict(loss="sum")),
        ("lstm_time_first_2layer", "LSTM", 3, 4, 4, 3, False, dict(num_layers=2)),
        ("lstm_batch_first_bidirectional_nobias", "LSTM", 3, 3, 4, 3, True,
         dict(bidirectional=True, bias=False)),
    ]
    cases += [recurrent_case(name, *args, **kw) for name, *args, kw in recurrent]

    # ---- MultiheadAttention (self-attention, output only)
    cases += [
        mha_case("mha_batch_first", 8, 2, 4, 3, True),
        mha_case("mha_time_first", 8, 2, 4, 3, False),
        mha_case("mha_batch_first_nobias", 6, 3, 3, 3, True, bias=False),
        mha_case("mha_time_first_bias_kv", 6, 2, 3, 3, False, add_bias_kv=True),
        mha_case("mha_batch_first_bias_kv_nobias", 4, 1, 5, 2, True, bias=False,
                 add_bias_kv=True),
    ]

    # ---- composite models
    def two_input():
        x = (torch.randn(4, 5), torch.randn(4, 4))
        y = torch.randn(4, 3)
        return dict(model=TwoBranch(), x=x, y=y, loss="mse", bd=0)

    def mlp_classifier():
        model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 4))
        x = torch.randn(4, 6)
        y = torch.tensor([0, 3, 1, 3], dtype=torch.int64)
        return dict(model=model, x=x, y=y, loss="cross_entropy", bd=0)

    def batch_of_one():
        model = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3))
        x = torch.randn(1, 5)
        y = torch.tensor([2], dtype=torch.int64)
        return dict(model=model, x=x, y=y, loss="cross_entropy", bd=0)

    def cnn_mlp():
        model = nn.Sequential(
            nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(3, 4, 2, groups=1), nn.Tanh(), nn.Flatten(),
            nn.Linear(4 * 2 * 2, 6), nn.ReLU(), nn.Linear(6, 3),
        )
        x = torch.randn(4, 1, 6, 6)
        y = torch.tensor([1, 0, 2, 1], dtype=torch.int64)
        return dict(model=model, x=x, y=y, loss="cross_entropy", bd=0)

    def cnn_segmentation():
        model = nn.Sequential(nn.Conv2d(2, 4, 3, padding="same"), nn.ReLU(),
                              nn.Conv2d(4, 3, 1))
        x = torch.randn(3, 2, 4, 4)
        y = torch.randint(0, 3, (3, 4, 4), dtype=torch.int64)
        return dict(model=model, x=x, y=y, loss="cross_entropy", bd=0)

    def mlp_sum():
        model = nn.Sequential(nn.Linear(4, 6), nn.GELU(), nn.LayerNorm(6), nn.Linear(6, 2))
        perturb_affine_(model[2])
        return dict(model=model, x=torch.randn(3, 4), y=None, loss="sum", bd=0)

    cases += [
        case("two_input", "TwoBranch", "Linear(5,3)(a)+tanh(Linear(4,3)(b))", two_input),
        case("mlp_classifier", "Sequential", "Linear(6,8)+ReLU+Linear(8,4)", mlp_classifier),
        case("batch_of_one", "Sequential", "Linear(5,4)+Tanh+Linear(4,3),B=1", batch_of_one),
        case("cnn_mlp", "Sequential",
             "Conv2d(1,3,3,p=1)+ReLU+MaxPool2d(2)+Conv2d(3,4,2)+Tanh+Flatten+Linear(16,6)+ReLU"
             "+Linear(6,3)", cnn_mlp),
        case("cnn_segmentation", "Sequential",
             "Conv2d(2,4,3,same)+ReLU+Conv2d(4,3,1),per-pixel classes", cnn_segmentation),
        case("mlp_gelu_layernorm", "Sequential", "Linear(4,6)+GELU+LayerNorm(6)+Linear(6,2)",
             mlp_sum),
    ]

    # ---- recurrent layers with an explicit zero initial state made from the input: the same
    # configurations (and weights and input) as their default-state twins, vmappable. Kept last:
    # TorchScript numbers the classes it compiles per process (___torch_mangle_N), so appending
    # cases leaves the earlier cases' model.pt files as they were.
    h0_twins = {"rnn_batch_first": "rnn_batch_first_h0",
                "rnn_time_first_2layer_relu": "rnn_time_first_2layer_relu_h0",
                "gru_batch_first_2layer": "gru_batch_first_2layer_h0",
                "gru_time_first_bidirectional": "gru_time_first_bidirectional_h0",
                "lstm_time_first_2layer": "lstm_time_first_h0"}
    cases += [recurrent_case(h0_twins[name], *args, h0=True, twin=name, **kw)
              for name, *args, kw in recurrent if name in h0_twins]

    # ---- models psg4j's vmap engine refuses (engine_vmap "unsupported", naming the op), which
    # the microbatch reference runs. Kept last as well (appended after the *_h0 cases).
    def data_dependent_branch():
        model = DataDependentBranch()
        x = torch.randn(3, 5)
        with torch.no_grad():  # the samples take both branches
            signs = {bool(model.fc(x[i : i + 1]).sum() > 0) for i in range(3)}
        assert signs == {False, True}, signs
        # The sign taken for the whole batch need not be each sample's (batch_independent
        # False), though under l1 (|-h| = |h|) the gradients do not depend on it.
        return dict(model=model, x=x, y=None, loss="l1", bd=0, batch_independent=False,
                    expect_vmap="unsupported", unsupported_op="aten::item",
                    engine_vmap="unsupported", engine_unsupported_op="aten::item")

    def item_scale():
        # The scale is the largest |output| of the batch run: each sample's alone.
        return dict(model=ItemScale(), x=torch.randn(3, 5), y=None, loss="l1", bd=0,
                    batch_independent=False, expect_vmap="unsupported",
                    unsupported_op="aten::item", engine_vmap="unsupported",
                    engine_unsupported_op="aten::item")

    def inplace_input_write():
        # torch.func's grad wraps the inputs too, so vmap(grad) may write into them; psg4j's
        # engine keeps them captured and refuses.
        return dict(model=InplaceInputWrite(), x=torch.randn(3, 5), y=None, loss="l1", bd=0,
                    mutates_input=True, engine_vmap="unsupported",
                    engine_unsupported_op="aten::mul_")

    cases += [
        case("data_dependent_branch", "DataDependentBranch",
             "Linear(5,3),then h=-h if bool(h.sum()>0)", data_dependent_branch),
        case("item_scale", "ItemScale", "Linear(5,3),then h*float(h.detach().abs().max().item())",
             item_scale),
        case("inplace_input_write", "InplaceInputWrite", "x.mul_(2.0),then Linear(5,3)",
             inplace_input_write),
    ]
    return cases


# --------------------------------------------------------------------------- driver


def make_case(out_dir, name, layer, config, build, log):
    torch.manual_seed(0)
    spec = build()
    model = spec["model"].eval()
    x, y, loss_kind, bd = spec["x"], spec["y"], spec["loss"], spec["bd"]
    expect_vmap, unsupported_op = spec.get("expect_vmap", "pass"), spec.get("unsupported_op")
    assert expect_vmap in ("pass", "unsupported"), name
    assert (unsupported_op is not None) == (expect_vmap == "unsupported"), name
    engine_vmap, engine_op = spec.get("engine_vmap", "pass"), spec.get("engine_unsupported_op")
    assert engine_vmap in ("pass", "unsupported"), name
    assert (engine_op is not None) == (engine_vmap == "unsupported"), name
    # fresh: the model writes into its input, so every run gets copies (as psg4j's reference
    # does), and x.pt keeps the original batch.
    fresh = spec.get("mutates_input", False)
    batch_independent = spec.get("batch_independent", True)
    x = tuple(own(t) for t in x) if isinstance(x, tuple) else own(x)
    x_orig = tuple(own(t) for t in as_tuple(x))
    y = None if y is None else own(y)
    assert (y is not None) == (loss_kind in ("mse", "cross_entropy")), name
    B = as_tuple(x)[0].shape[bd]
    assert all(t.shape[bd] == B for t in as_tuple(x)), name
    assert y is None or y.shape[0] == B, name
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)

    path = os.path.join(d, "model.pt")
    try:
        scripted, how = torch.jit.script(model), "script"
    except Exception as e:
        log(f"[{name}] torch.jit.script failed ({clean_error(e)}); tracing")
        scripted, how = torch.jit.trace(model, fresh_inputs(x, fresh)), "trace"
    # A trace would bake in the branch taken and the .item() value: the op the engine is
    # expected to refuse must be in a scripted graph.
    assert how == "script" or engine_vmap == "pass", name
    scripted.eval()
    scripted.save(path)
    save(x, os.path.join(d, "x.pt"))
    if y is not None:
        save(y, os.path.join(d, "y.pt"))

    param_names = [k for k, _ in model.named_parameters()]
    loaded = torch.jit.load(path)
    script_names = [k for k, _ in loaded.named_parameters()]
    assert param_names == script_names, (name, param_names, script_names)

    # The saved TorchScript module must compute the same output as the eager one.
    with torch.no_grad():
        oe, os_ = model(*fresh_inputs(x, fresh)), loaded(*fresh_inputs(x, fresh))
        if fresh:  # make sure it does write into its input
            probe = fresh_inputs(x, True)
            loaded(*probe)
            assert not all(torch.equal(a, b) for a, b in zip(probe, as_tuple(x))), name
    if not torch.equal(oe, os_):
        sys.exit(f"[{name}] TorchScript output differs from eager: "
                 f"max abs diff {float((oe - os_).abs().max()):.3e}")

    vmap_ok, vmap_err, fallback, func_chain = True, None, set(), []
    full = batch_grads(model, x, y, loss_kind, bd, fresh)
    for red in ("sum", "mean"):
        lg = loop_grads(model, x, y, loss_kind, red, bd, B, fresh)
        if vmap_ok:
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    fg = func_grads(model, x, y, loss_kind, red, bd, fresh)
                for w in caught:
                    m = re.search(r"batching rule for (aten::[\w.]*\w)", str(w.message))
                    if m:  # vmap worked, but through the slow per-sample fallback
                        fallback.add(m.group(1))
                    else:
                        log(f"[{name}] warning under vmap ({red}): {w.message}")
            except Exception as e:
                vmap_ok, vmap_err = False, clean_error(e)
                log(f"[{name}] torch.func vmap FAILED ({red}): {vmap_err}; storing microbatch grads")
                with warnings.catch_warnings():  # again, to see which ops were running
                    warnings.simplefilter("ignore")
                    _, func_chain = profiled(
                        lambda: func_grads(model, x, y, loss_kind, red, bd, fresh))
                log(f"[{name}] torch.func failed in: {' > '.join(func_chain)}")
        if vmap_ok:
            if not all_close(fg, lg):
                sys.exit(
                    f"[{name}] func grads ({red}) differ from microbatch loop: "
                    f"max abs diff {max_abs_diff(fg, lg):.3e}"
                )
            log(f"[{name}] func vs microbatch loop ({red}): max abs diff "
                f"{max_abs_diff(fg, lg):.3e}")
            ref = fg
        else:
            ref = lg
        for k in param_names:
            if not torch.isfinite(ref[k]).all():
                sys.exit(f"[{name}] non-finite per-sample grads for {k} ({red})")
            if not ref[k].abs().sum() > 0:
                sys.exit(f"[{name}] all-zero per-sample grads for {k} ({red}): weak fixture")
        # The saved TorchScript module, run as a microbatch loop, gives the same grads.
        sg = loop_grads(loaded, x, y, loss_kind, red, bd, B, fresh)
        if not all_close(sg, ref):
            sys.exit(f"[{name}] microbatch loop over the TorchScript module ({red}) differs "
                     f"from the reference: max abs diff {max_abs_diff(sg, ref):.3e}")
        if red == "sum" and not batch_independent:
            log(f"[{name}] forward depends on the whole batch: no check against its gradient")
        elif red == "sum":
            summed = {k: ref[k].sum(0) for k in param_names}
            if not all_close(summed, full, atol=1e-5, rtol=1e-4):
                sys.exit(f"[{name}] per-sample 'sum' grads do not add up to the batch gradient: "
                         f"max abs diff {max_abs_diff(summed, full):.3e}")
        save(ref, os.path.join(d, f"grads_{red}.pt"))
    if fallback:
        log(f"[{name}] vmap used the slow batching fallback for: {', '.join(sorted(fallback))}")
    if vmap_ok != (expect_vmap == "pass"):
        sys.exit(f"[{name}] expect_vmap is {expect_vmap!r} but torch.func vmap "
                 f"{'succeeded' if vmap_ok else 'failed: ' + str(vmap_err)}")
    # The ops named must be the TorchScript module's: in its inlined graph, or dispatched by it
    # (aten::Bool calls aten::item); unsupported_op also where torch.func failed.
    with torch.no_grad():
        dispatched, _ = profiled(lambda: loaded(*fresh_inputs(
            tuple(t.narrow(bd, 0, 1) for t in as_tuple(x)), True)))
    module_ops = graph_ops(loaded) | dispatched
    for field, op in (("unsupported_op", unsupported_op), ("engine_unsupported_op", engine_op)):
        if op is not None and op not in module_ops:
            sys.exit(f"[{name}] {field} {op} is neither in the TorchScript graph nor run by it")
    if unsupported_op is not None and unsupported_op not in func_chain:
        sys.exit(f"[{name}] unsupported_op {unsupported_op} is not where torch.func failed: "
                 f"{' > '.join(func_chain) or 'no op'}")
    if not all(torch.equal(a, b) for a, b in zip(as_tuple(x), x_orig)):
        sys.exit(f"[{name}] the input changed while making the case")

    return spec.get("twin"), {
        "name": name,
        "layer": layer,
        "config": config,
        "inputs": ["x.pt"],
        "multi_input": isinstance(x, tuple),
        "batch_dim": bd,
        "batch_size": B,
        "loss": loss_kind,
        "target": "y.pt" if y is not None else None,
        "scripted": how,
        "func_vmap": vmap_ok,
        "func_vmap_error": vmap_err,
        "func_vmap_fallback_ops": sorted(fallback),
        "expect_vmap": expect_vmap,
        "unsupported_op": unsupported_op,
        "engine_vmap": engine_vmap,
        "engine_unsupported_op": engine_op,
        "param_names": param_names,
        "param_shapes": {k: list(p.shape) for k, p in model.named_parameters()},
    }


def main():

    # TorchScript debug info records the source lines of the custom modules too: editing above a
    # custom module (the module docstring included: keep its line count) changes the model.pt
    # files that hold it; add new modules after the others.
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import fixture_tools

    out_dir, quiet = fixture_tools.start(__doc__, DEFAULT_OUT, __file__, REPO_ROOT, "PSG4J_LAYER_MATRIX_CHILD")

    # The op checks run the autograd profiler; keep Kineto from logging that it finds no GPU.
    os.environ.setdefault("KINETO_LOG_LEVEL", "5")
    # Conv with padding='same' and an even kernel warns that it pads a copy of the input.
    warnings.filterwarnings("ignore", message="Using padding='same' with even kernel")

    torch.set_num_threads(1)  # reproducible reductions
    torch.use_deterministic_algorithms(True)

    before = fixture_tools.digest_tree(out_dir) if os.path.isdir(out_dir) else {}
    os.makedirs(out_dir, exist_ok=True)
    log = (lambda s: None) if quiet else print

    specs = case_specs()
    names = [s[0] for s in specs]
    assert len(names) == len(set(names)), "duplicate case names"
    manifest, twins = [], {}
    for spec in specs:
        twin, entry = make_case(out_dir, *spec, log)
        manifest.append(entry)
        if twin is not None:
            assert twin in names[: names.index(spec[0])], (spec[0], twin)
            twins[spec[0]] = twin
    # An explicit zero initial state must give the same grads as the default one.
    for name, twin in twins.items():
        for red in ("sum", "mean"):
            a, b = (torch.load(os.path.join(out_dir, n, f"grads_{red}.pt")) for n in (name, twin))
            if not all_close(a, b):
                sys.exit(f"[{name}] grads ({red}) differ from those of {twin}: "
                         f"max abs diff {max_abs_diff(a, b):.3e}")
        log(f"[{name}] same grads as {twin}")
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")

    after = fixture_tools.digest_tree(out_dir)
    stale = fixture_tools.stale_files(after, names)
    if stale:
        log(f"note: files not written by this run (stale?): {stale}")
    total = sum(os.path.getsize(os.path.join(out_dir, p)) for p in after)
    log(f"{len(manifest)} cases; wrote {len(after)} files, {total} bytes total into {out_dir}")
    no_vmap = [e["name"] for e in manifest if not e["func_vmap"]]
    traced = [e["name"] for e in manifest if e["scripted"] != "script"]
    log(f"traced: {traced or 'none'}; not vmappable by torch.func: {no_vmap or 'none'}")
    unsupported = [f"{e['name']} ({e['unsupported_op']})" for e in manifest
                   if e["expect_vmap"] == "unsupported"]
    log(f"expect_vmap unsupported: {unsupported or 'none'}")
    refused = [f"{e['name']} ({e['engine_unsupported_op']})" for e in manifest
               if e["engine_vmap"] == "unsupported"]
    log(f"engine_vmap unsupported: {refused or 'none'}")
    if total >= MAX_BYTES:
        sys.exit(f"layer matrix too large: {total} bytes")
    if before:
        log(fixture_tools.regeneration_report(before, after))


if __name__ == "__main__":
    main()
