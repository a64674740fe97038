#!/usr/bin/env python3
"""The two realistic models of the in-the-loop benchmark, exported for `psg4j bench --model`.

    python src/test/python/export_realistic.py --out DIR [--samples N] [--time B,B2,...]

Writes, seeded (the same files every run):
    DIR/resnet18gn.pt, _x.pt, _y.pt  torchvision's ResNet-18 (10 classes) with GroupNorm(32) in place of
                                     every BatchNorm (per-sample normalization, as DP-SGD needs), eval
                                     mode, 32x32 RGB inputs [N,3,32,32], class targets [N]
    DIR/gpt.pt, _x.pt, _y.pt         a GPT-style decoder: token embedding tied to the LM head (one
                                     parameter), learned positions, 2 pre-LayerNorm blocks of causal
                                     self-attention (4 heads) and a GELU MLP, D = 128, V = 2000, T = 32;
                                     tokens [N,32], next tokens [N,32]; its output is [N, V, T] (classes
                                     on dim 1, as cross_entropy takes per-token logits)
Both use cross_entropy. Bench them with
    psg4j bench --model DIR/gpt.pt --input DIR/gpt_x.pt --target DIR/gpt_y.pt --loss cross_entropy --batch 32,256

--time B,... also prints, per model and B, torch's own medians (1 thread) of one batched backward and
torch.func's vmap(grad) per-sample gradients, for the side-by-side table.
"""

import argparse
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap

SEED = 0
VOCAB, CONTEXT, WIDTH, HEADS, BLOCKS = 2000, 32, 128, 4, 2


def resnet18_gn():
    import torchvision
    return torchvision.models.resnet18(num_classes=10, norm_layer=lambda c: nn.GroupNorm(32, c))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1 = nn.LayerNorm(WIDTH)
        self.qkv = nn.Linear(WIDTH, 3 * WIDTH)
        self.proj = nn.Linear(WIDTH, WIDTH)
        self.ln2 = nn.LayerNorm(WIDTH)
        self.up = nn.Linear(WIDTH, 4 * WIDTH)
        self.down = nn.Linear(4 * WIDTH, WIDTH)
        self.register_buffer("causal", torch.full((CONTEXT, CONTEXT), float("-inf")).triu(1))

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        heads = lambda z: z.reshape(b, t, HEADS, d // HEADS).transpose(1, 2)
        q, k, v = heads(q), heads(k), heads(v)
        scores = q @ k.transpose(-2, -1) / math.sqrt(d // HEADS) + self.causal[:t, :t]
        attended = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, d)
        x = x + self.proj(attended)
        return x + self.down(F.gelu(self.up(self.ln2(x))))


class Gpt(nn.Module):
    def __init__(self):
        super().__init__()
        self.tokens = nn.Embedding(VOCAB, WIDTH)
        self.positions = nn.Parameter(torch.randn(CONTEXT, WIDTH) * 0.02)
        self.blocks = nn.ModuleList([Block() for _ in range(BLOCKS)])
        self.ln = nn.LayerNorm(WIDTH)

    def forward(self, tokens):
        x = self.tokens(tokens) + self.positions[: tokens.shape[1]]
        for block in self.blocks:
            x = block(x)
        logits = self.ln(x) @ self.tokens.weight.t()  # the head tied to the embedding
        return logits.transpose(1, 2)  # [B, V, T]


def build(name, samples):
    torch.manual_seed(SEED)
    if name == "resnet18gn":
        model = resnet18_gn().eval()
        x = torch.randn(samples, 3, 32, 32)
        y = torch.randint(0, 10, (samples,))
    else:
        model = Gpt().eval()
        x = torch.randint(0, VOCAB, (samples, CONTEXT))
        y = torch.randint(0, VOCAB, (samples, CONTEXT))
    return model, x, y


def export(out, samples):
    os.makedirs(out, exist_ok=True)
    for name in ("resnet18gn", "gpt"):
        model, x, y = build(name, samples)
        torch.jit.trace(model, x[:2]).save(os.path.join(out, f"{name}.pt"))
        torch.save(x.contiguous(), os.path.join(out, f"{name}_x.pt"))
        torch.save(y.contiguous(), os.path.join(out, f"{name}_y.pt"))
        parameters = sum(p.numel() for p in model.parameters())
        print(f"exported {name}: {parameters} parameters, {samples} samples", file=sys.stderr)


def median_ms(fn, repeats, budget_ms):
    fn()
    times, spent = [], 0.0
    while len(times) < repeats and (len(times) < 3 or spent < budget_ms):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
        spent += times[-1]
    return statistics.median(times), len(times)


def timings(batches, samples, repeats, budget_ms):
    torch.set_num_threads(1)
    results = []
    for name in ("resnet18gn", "gpt"):
        model, x_all, y_all = build(name, samples)
        params = {k: v.detach() for k, v in model.named_parameters()}
        for b in batches:
            x, y = x_all[:b], y_all[:b]

            def backward():
                loss = F.cross_entropy(model(x), y, reduction="sum")
                torch.autograd.grad(loss, list(model.parameters()))

            def sample_loss(p, xi, yi):
                return F.cross_entropy(functional_call(model, p, (xi.unsqueeze(0),)), yi.unsqueeze(0), reduction="sum")

            per_sample = vmap(grad(sample_loss), in_dims=(None, 0, 0))

            for method, fn in (("batched_backward", backward), ("func_vmap", lambda: per_sample(params, x, y))):
                ms, n = median_ms(fn, repeats, budget_ms)
                results.append({"model": name, "batch": b, "method": method, "median_ms": ms, "repeats": n})
                print(f"{name} B={b} {method}: {ms:.1f} ms ({n} runs)", file=sys.stderr)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--time", default="")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--budget-ms", type=float, default=20000)
    args = parser.parse_args()
    export(args.out, args.samples)
    if args.time:
        batches = [int(b) for b in args.time.split(",")]
        print(json.dumps({"threads": 1, "results": timings(batches, args.samples, args.repeats, args.budget_ms)}))


if __name__ == "__main__":
    main()
