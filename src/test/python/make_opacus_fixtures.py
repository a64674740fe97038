"""Opacus exports for psg4j's norms-only and clipped-sum checks, made the way the README
recipes make them.

Writes src/test/resources/fixtures/opacus/<case>/ with model.pt (TorchScript), x.pt, y.pt (when
the loss takes targets) and, for each reduction R in sum and mean:
  grads_R.pt               GradSampleModule's p.grad_sample dict         (check --candidate)
  ghost_norms_R.pt         GradSampleModuleFastGradientClipping (use_ghost_clipping=True):
                           get_norm_sample(), the norm of each sample's whole gradient [B]
  ghost_param_norms_R.pt   the same module's per-parameter p._norm_sample {param: [B]}
  norms_R.pt               flat norms computed from grad_sample           (check --candidate-norms)
  summed_flat_R.pt         DPOptimizer's p.summed_grad, noise_multiplier=0 (check --candidate-clipped-sum)
  summed_per_layer_R.pt    DPPerLayerOptimizer's, thresholds C/sqrt(P) each (Opacus's examples' split)
and planted bugs (bug_*_R.pt), each listed in manifest.json with the diagnosis and the parameter /
samples a check must name. C (max_grad_norm) is the median per-sample norm rounded, so that some
samples are clipped and some are not. Loss: the case's (Opacus's ModelWithLoss way: l1 against
zeros, or cross_entropy with y).
Run from the repository root: python3 src/test/python/make_opacus_fixtures.py
"""

import json
import math
import os
import sys
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture_tools  # noqa: E402

warnings.filterwarnings("ignore")
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
OUT = os.path.join(REPO, "src", "test", "resources", "fixtures", "opacus")
B = 6


class EmbConv(torch.nn.Module):
    """Embedding, then a Conv1d over the sequence, then a Linear: Opacus has a ghost-norm sampler
    for Embedding and Linear, and falls back to the conv's grad_sample for Conv1d."""

    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(20, 6)
        self.conv = torch.nn.Conv1d(6, 4, 3)
        self.fc = torch.nn.Linear(4 * 5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.emb(x).transpose(1, 2)
        h = torch.relu(self.conv(h))
        return self.fc(h.flatten(1))


def mlp():
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))


def loss_of(kind):
    if kind == "cross_entropy":
        return lambda out, y, reduction: torch.nn.functional.cross_entropy(out, y, reduction=reduction)
    return lambda out, y, reduction: torch.nn.functional.l1_loss(out, torch.zeros_like(out), reduction=reduction)


def own(t):
    return t.detach().clone().contiguous()


def grad_samples(model, x, y, loss, reduction):
    """Recipe 1: GradSampleModule's per-sample gradients {name: [B, *shape]}."""
    from opacus import GradSampleModule

    gsm = GradSampleModule(model, batch_first=True, loss_reduction=reduction)
    loss(gsm(x), y, reduction).backward()
    out = {n: own(p.grad_sample) for n, p in model.named_parameters()}
    gsm._close()
    model.zero_grad(set_to_none=True)
    return out


def ghost_norms(model, x, y, loss, reduction):
    """Recipe 2: ghost clipping's per-sample norms [B] and per-parameter norms {name: [B]}."""
    from opacus.grad_sample import GradSampleModuleFastGradientClipping

    gsm = GradSampleModuleFastGradientClipping(model, batch_first=True, loss_reduction=reduction,
                                               use_ghost_clipping=True)
    loss(gsm(x), y, reduction).backward()
    whole = own(gsm.get_norm_sample())
    per_param = {n: own(p._norm_sample) for n, p in model.named_parameters()}
    gsm._close()
    model.zero_grad(set_to_none=True)
    return whole, per_param


def summed_grad(model, x, y, loss, reduction, max_grad_norm, per_layer):
    """Recipe 3: DPOptimizer's pre-noise p.summed_grad, noise_multiplier=0; also p.grad after its step
    (the average a planted bug gives instead)."""
    from opacus import GradSampleModule
    from opacus.optimizers import DPOptimizer, DPPerLayerOptimizer

    gsm = GradSampleModule(model, batch_first=True, loss_reduction=reduction)
    sgd = torch.optim.SGD(model.parameters(), lr=0.1)
    if per_layer:
        n = len([p for p in model.parameters() if p.requires_grad])
        opt = DPPerLayerOptimizer(sgd, noise_multiplier=0.0, max_grad_norm=[max_grad_norm / math.sqrt(n)] * n,
                                  expected_batch_size=B, loss_reduction=reduction)
    else:
        opt = DPOptimizer(sgd, noise_multiplier=0.0, max_grad_norm=max_grad_norm, expected_batch_size=B,
                          loss_reduction=reduction)
    loss(gsm(x), y, reduction).backward()
    opt.pre_step()  # clip_and_accumulate, add_noise (0 here), scale_grad
    summed = {n: own(p.summed_grad) for n, p in model.named_parameters()}
    averaged = {n: own(p.grad) for n, p in model.named_parameters()}
    opt.zero_grad(set_to_none=True)
    gsm._close()
    return summed, averaged


def flat_norms(grads):
    per_param = torch.stack([g.reshape(len(g), -1).norm(2, dim=-1) for g in grads.values()], dim=1)
    return per_param.norm(2, dim=1)


def clipped(grads, max_grad_norm, floored=True, divisor=1.0, thresholds=None):
    """Σᵢ fᵢ·gᵢ by Opacus's formula on the gradients g / divisor (then × divisor), flat unless
    per-parameter thresholds are given."""
    scaled = {n: g / divisor for n, g in grads.items()}
    out = {}
    if thresholds is None:
        factor = max_grad_norm / (flat_norms(scaled) + 1e-6)
        factor = factor.clamp(max=1.0) if floored else factor
        for n, g in scaled.items():
            out[n] = own(torch.einsum("i,i...", factor, g) * divisor)
        return out
    for (n, g), t in zip(scaled.items(), thresholds):
        factor = (t / (g.reshape(len(g), -1).norm(2, dim=-1) + 1e-6))
        factor = factor.clamp(max=1.0) if floored else factor
        out[n] = own(torch.einsum("i,i...", factor, g) * divisor)
    return out


def bug(file, diagnosis, param=None, samples=None, max_grad_norm=None, clipping=None):
    """A planted bug: the diagnosis and the parameter / samples a check must name; clipped sums also
    say the --max-grad-norm and --clipping to check them with."""
    return {"file": file, "diagnosis": diagnosis, "param": param, "samples": samples, "max_grad_norm": max_grad_norm,
            "clipping": clipping}


def make_case(out_dir, name, model, x, y, loss_kind):
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    model.eval()
    torch.jit.trace(model, x).save(os.path.join(d, "model.pt"))
    torch.save(x, os.path.join(d, "x.pt"))
    if y is not None:
        torch.save(y, os.path.join(d, "y.pt"))
    loss = loss_of(loss_kind)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    entry = {"name": name, "inputs": ["x.pt"], "target": "y.pt" if y is not None else None, "loss": loss_kind,
             "batch_size": B, "param_names": names, "reductions": {}}
    for reduction in ("sum", "mean"):
        save = lambda file, obj: torch.save(obj, os.path.join(d, f"{file}_{reduction}.pt"))  # noqa: E731
        model.train()
        grads = grad_samples(model, x, y, loss, reduction)
        whole, per_param = ghost_norms(model, x, y, loss, reduction)
        norms = flat_norms(grads)
        c = float(f"{norms.median().item():.3g}")
        summed_flat, averaged = summed_grad(model, x, y, loss, reduction, c, per_layer=False)
        summed_per_layer, _ = summed_grad(model, x, y, loss, reduction, c, per_layer=True)
        model.eval()
        save("grads", grads)
        save("ghost_norms", whole)
        save("ghost_param_norms", per_param)
        save("norms", own(norms))
        save("summed_flat", summed_flat)
        save("summed_per_layer", summed_per_layer)

        bugs = []
        scaled_one = own(norms)
        scaled_one[2] *= 1.5
        save("bug_norm_scaled", scaled_one)
        bugs.append(bug(f"bug_norm_scaled_{reduction}.pt", "scaled_norms", None, [2]))
        save("bug_norms_squared", own(norms * norms))
        bugs.append(bug(f"bug_norms_squared_{reduction}.pt", "norms_squared", None, None))
        swapped = own(norms)
        swapped[[1, 4]] = swapped[[4, 1]]
        save("bug_norms_swapped", swapped)
        bugs.append(bug(f"bug_norms_swapped_{reduction}.pt", "norms_permuted", None, [1, 4]))
        one_param = dict(per_param)
        one_param[names[0]] = own(per_param[names[0]])
        one_param[names[0]][3] *= 2.0
        save("bug_param_norm_scaled", one_param)
        bugs.append(bug(f"bug_param_norm_scaled_{reduction}.pt", "scaled_norms", names[0], [3]))
        save("bug_not_floored", clipped(grads, c, floored=False))
        bugs.append(bug(f"bug_not_floored_{reduction}.pt", "clipping_not_floored", None, None, c, "flat"))
        n = len(names)
        # Per-layer thresholds summed wrongly: C each (unsplit) at a C below some parameters' norms,
        # and C/P each (thresholds summing to C rather than of L2 norm C).
        c_small = float(f"{min(g.reshape(B, -1).norm(dim=1).max().item() for g in grads.values()):.3g}")
        save("bug_per_layer_unsplit", clipped(grads, c_small, thresholds=[c_small] * n))
        bugs.append(bug(f"bug_per_layer_unsplit_{reduction}.pt", "per_layer_thresholds_unsplit", None, None, c_small,
                        "per-layer"))
        save("bug_per_layer_linear", clipped(grads, c, thresholds=[c / n] * n))
        bugs.append(bug(f"bug_per_layer_linear_{reduction}.pt", "per_layer_thresholds_split_linearly", None, None, c,
                        "per-layer"))
        if reduction == "mean":
            save("bug_norms_mean_unscaled", own(norms / B))
            bugs.append(bug("bug_norms_mean_unscaled_mean.pt", "norms_mean_sum_confusion", None, None))
            # A C that clips some of the batch-mean loss's gradients g/B, so the bug shows.
            c_mean = float(f"{(norms.median() / B).item():.3g}")
            save("bug_clipped_before_scaling", clipped(grads, c_mean, divisor=B))
            bugs.append(bug("bug_clipped_before_scaling_mean.pt", "clipping_before_mean_scaling", None, None, c_mean,
                            "flat"))
            save("bug_averaged", averaged)
            bugs.append(bug("bug_averaged_mean.pt", "clipped_sum_divided_by_batch", None, None, c, "flat"))
        if reduction == "sum":  # files a check must refuse (exit 2) or fail as non-finite (exit 1)
            save("bad_norms_too_long", own(torch.cat([norms, norms[:1]])))
            save("bad_sum_missing", {k: v for k, v in summed_flat.items() if k != names[-1]})
            save("bad_sum_extra", dict(summed_flat, **{"frozen.weight": torch.zeros(2)}))
            with_nan = own(norms)
            with_nan[1] = float("nan")
            save("bad_norms_nan", with_nan)
        entry["reductions"][reduction] = {
            "max_grad_norm": c,
            "clipped_samples": int((norms > c).sum().item()),
            "ghost_vs_grad_sample_max_rel": float(((whole - norms).abs() / norms).max().item()),
            "bugs": bugs,
        }
    return entry


def main():
    out_dir, quiet = fixture_tools.start(__doc__, OUT, __file__, REPO, "PSG4J_OPACUS_FIXTURES_RERUN")
    before = fixture_tools.digest_tree(out_dir) if os.path.isdir(out_dir) else {}
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(10)
    manifest = [make_case(out_dir, "mlp", mlp(), torch.randn(B, 8), torch.randint(0, 4, (B,)), "cross_entropy")]
    torch.manual_seed(11)
    manifest.append(make_case(out_dir, "emb_conv", EmbConv(), torch.randint(0, 20, (B, 7)), None, "l1"))
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    if not quiet:
        print(fixture_tools.regeneration_report(before, fixture_tools.digest_tree(out_dir)))


if __name__ == "__main__":
    main()
