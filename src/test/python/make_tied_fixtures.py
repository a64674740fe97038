"""Fixtures for tied parameters: TorchScript models in which one tensor has several names.

Writes src/test/resources/tied_fixtures/<case>/ with model.pt, x.pt and candidate gradients
(dicts {name: Tensor[B, *shape]} named as Python's named_parameters() names them, i.e. each tied
tensor once, by its first name), plus manifest.json:
  tied_linear  a Linear whose weight is also a second Linear's (scripted); candidates from
               torch.func, one naming the tied weight by its alias instead, one naming it by both
               names with the alias entry wrong
  dplstm       Opacus's DPLSTM (traced): LibTorch lists each LSTM parameter under its renamed
               alias and the cell's own name; candidates are Opacus's own grad_sample
Loss l1 against zeros (psg4j's default), reductions sum and mean.
Run from the repository root: python3 src/test/python/make_tied_fixtures.py
"""

import json
import os
import sys
import warnings

import torch
from torch.func import functional_call, grad, vmap

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture_tools  # noqa: E402

warnings.filterwarnings("ignore")
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
OUT = os.path.join(REPO, "src", "test", "resources", "tied_fixtures")
B = 6


class TiedLinear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(4, 3)
        self.b = torch.nn.Linear(4, 3)
        self.b.weight = self.a.weight  # one tensor, two names

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a(x) + self.b(torch.tanh(x))


class LstmNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        from opacus.layers import DPLSTM

        self.lstm = DPLSTM(4, 5, batch_first=True)
        self.fc = torch.nn.Linear(5, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.fc(out[:, -1])


def l1(out, reduction):
    return torch.nn.functional.l1_loss(out, torch.zeros_like(out), reduction=reduction)


def own(t):
    return t.detach().clone().contiguous()


def func_grads(model, x, reduction):
    params = {k: v.detach() for k, v in model.named_parameters()}

    def one(p, xi):
        return l1(functional_call(model, p, (xi.unsqueeze(0),)), reduction)

    g = vmap(grad(one), in_dims=(None, 0))(params, x)
    return {k: own(v) for k, v in g.items()}


def opacus_grads(model, x, reduction):
    from opacus import GradSampleModule

    gsm = GradSampleModule(model.train(), batch_first=True, loss_reduction=reduction)
    out = gsm(x)
    loss = l1(out, reduction) if reduction == "sum" else l1(out, "mean")
    loss.backward()
    grads = {k: own(p.grad_sample) for k, p in model.named_parameters()}
    gsm._close()
    model.eval()
    return grads


def write(case_dir, name, obj):
    torch.save(obj, os.path.join(case_dir, name))


def make_tied_linear(out_dir):
    torch.manual_seed(1)
    model = TiedLinear().eval()
    x = torch.randn(B, 4)
    d = os.path.join(out_dir, "tied_linear")
    os.makedirs(d, exist_ok=True)
    torch.jit.script(model).save(os.path.join(d, "model.pt"))
    write(d, "x.pt", x)
    candidates = {}
    for reduction in ("sum", "mean"):
        g = func_grads(model, x, reduction)
        write(d, f"grads_func_{reduction}.pt", g)
        by_alias = {("b.weight" if k == "a.weight" else k): v for k, v in g.items()}
        write(d, f"grads_alias_{reduction}.pt", by_alias)
        both = dict(g)
        both["b.weight"] = own(g["a.weight"] * 0.5)  # the alias entry disagrees
        write(d, f"grads_both_wrong_alias_{reduction}.pt", both)
        candidates[reduction] = {"func": True, "alias": True, "both_wrong_alias": False}
    return {"name": "tied_linear", "inputs": ["x.pt"], "target": None, "batch_size": B,
            "tied": {"a.weight": ["b.weight"]}, "passes": candidates}


def make_dplstm(out_dir):
    torch.manual_seed(2)
    model = LstmNet().eval()
    x = torch.randn(B, 3, 4)
    d = os.path.join(out_dir, "dplstm")
    os.makedirs(d, exist_ok=True)
    torch.jit.trace(model, x).save(os.path.join(d, "model.pt"))
    write(d, "x.pt", x)
    for reduction in ("sum", "mean"):
        write(d, f"grads_opacus_{reduction}.pt", opacus_grads(model, x, reduction))
    return {"name": "dplstm", "inputs": ["x.pt"], "target": None, "batch_size": B,
            "python_names": [k for k, _ in model.named_parameters()]}


def main():
    out_dir, quiet = fixture_tools.start(__doc__, OUT, __file__, REPO, "PSG4J_TIED_FIXTURES_RERUN")
    before = fixture_tools.digest_tree(out_dir) if os.path.isdir(out_dir) else {}
    os.makedirs(out_dir, exist_ok=True)
    manifest = [make_tied_linear(out_dir), make_dplstm(out_dir)]
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    if not quiet:
        print(fixture_tools.regeneration_report(before, fixture_tools.digest_tree(out_dir)))


if __name__ == "__main__":
    main()
