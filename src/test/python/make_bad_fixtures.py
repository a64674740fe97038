#!/usr/bin/env python3
"""Generate the bad-input fixtures of psg4j's bad-input corpus (BadInputCorpusTest).

Run with the project's Python environment (torch 2.10.0):

    python src/test/python/make_bad_fixtures.py [--out DIR] [--quiet]

Reads the mlp fixture (src/test/resources/fixtures/mlp: Linear(8, 16) - ReLU - Linear(16, 4),
B = 6, cross_entropy) and writes into src/test/resources/fixtures/bad/ files a new user might
give it by mistake, each wrong in one way only:

    candidate_sparse.pt      grads_func_sum.pt with '0.weight' saved sparse (t.to_sparse())
    candidate_tuple.pt       the four per-sample gradients as a tuple (no names)
    candidate_list.pt        the same as a list
    candidate_empty_key.pt   grads_func_sum.pt with '0.weight' saved under the key '' (a dict
                             still: one missing and one extra parameter)
    x_7_features.pt          x with 7 features where the model takes 8 (a TorchScript error)
    x_float64.pt             x as float64 (the model is float32)
    x_int64.pt               x as int64
    x_sparse.pt              x saved sparse
    x_scalar.pt              a 0-dim tensor
    x_empty_tuple.pt         an empty tuple
    x_list_with_int.pt       [x, 3]: a list holding a number
    y_out_of_range.pt        cross_entropy targets with sample 3's class 7 (of 4 classes)
    y_negative.pt            cross_entropy targets with sample 2's class -5
    y_ignore_index.pt        cross_entropy targets with sample 1's class -100 (ignore_index: valid)
    y_column.pt              cross_entropy targets shaped [6, 1] instead of [6]
    y_float.pt               cross_entropy targets as float32 class numbers
    y_bool.pt                targets as bool
    y_mse_wrong_shape.pt     mse targets shaped [6] for outputs [6, 4]
    y_mse_int.pt             mse targets shaped like the outputs [6, 4], but int64

The script is deterministic: running it again rewrites byte-identical files.
"""

import os
import sys

import torch

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
FIXTURES = os.path.join(REPO_ROOT, "src", "test", "resources", "fixtures")
DEFAULT_OUT = os.path.join(FIXTURES, "bad")


def mlp(name):
    return torch.load(os.path.join(FIXTURES, "mlp", name))


def bad_files():
    """{file name: object to torch.save}."""
    x, y, grads = mlp("x.pt"), mlp("y.pt"), mlp("grads_func_sum.pt")
    torch.manual_seed(8)

    def with_class(sample, value):
        t = y.clone()
        t[sample] = value
        return t

    sparse = dict(grads)
    sparse["0.weight"] = grads["0.weight"].to_sparse()
    empty_key = {("" if k == "0.weight" else k): v for k, v in grads.items()}
    return {
        "candidate_sparse.pt": sparse,
        "candidate_tuple.pt": tuple(grads.values()),
        "candidate_list.pt": list(grads.values()),
        "candidate_empty_key.pt": empty_key,
        "x_7_features.pt": torch.randn(x.shape[0], 7),
        "x_float64.pt": x.double(),
        "x_int64.pt": (x * 10).long(),
        "x_sparse.pt": x.to_sparse(),
        "x_scalar.pt": torch.tensor(3.0),
        "x_empty_tuple.pt": (),
        "x_list_with_int.pt": [x, 3],
        "y_out_of_range.pt": with_class(3, 7),
        "y_negative.pt": with_class(2, -5),
        "y_ignore_index.pt": with_class(1, -100),
        "y_column.pt": y.unsqueeze(1).clone(),
        "y_float.pt": y.float(),
        "y_bool.pt": y > 1,
        "y_mse_wrong_shape.pt": torch.randn(x.shape[0]),
        "y_mse_int.pt": torch.randint(0, 3, (x.shape[0], 4)),
    }


def main():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import fixture_tools

    out_dir, quiet = fixture_tools.start(__doc__, DEFAULT_OUT, __file__, REPO_ROOT, "PSG4J_BAD_FIXTURES_CHILD")
    log = (lambda s: None) if quiet else print
    before = fixture_tools.digest_tree(out_dir) if os.path.isdir(out_dir) else {}
    os.makedirs(out_dir, exist_ok=True)
    files = bad_files()
    for name, obj in files.items():
        torch.save(obj, os.path.join(out_dir, name))
    after = fixture_tools.digest_tree(out_dir)
    stale = fixture_tools.stale_files(after, files)
    log(f"wrote {len(files)} files into {out_dir}" + (f"; not written by this run: {stale}" if stale else ""))
    if before:
        log(fixture_tools.regeneration_report(before, after))

if __name__ == "__main__":
    main()
