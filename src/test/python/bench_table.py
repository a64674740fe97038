#!/usr/bin/env python3
"""The side-by-side table of bench_side_by_side.sh, from the JSON of its rounds.

    python src/test/python/bench_table.py --psg4j R1.json R2.json ... --python P1.json P2.json ...

--psg4j files: `psg4j bench --json` (schema 2: results with suite, method, batch, threads, median_ms).
--python files: bench_python.py's output (results with suite, batch, method, median_ms).
Each cell is the median over the rounds of that round's median; the table prints ms per model and
B, then the ratios (theirs / ours: above 1 psg4j is faster), each with the median over the models.
"""

import argparse
import json
import statistics
import sys

SUITES = ("mlp", "cnn", "seq", "emb")

# (column, side, method): the table, left to right
COLUMNS = (
    ("psg4j vmap", "psg4j", "vmap"),
    ("torch.func", "python", "func_vmap"),
    ("JAX jit(vmap(grad))", "python", "jax_vmap"),
    ("psg4j microbatch", "psg4j", "microbatch"),
    ("Python bare loop", "python", "microbatch_loop"),
    ("psg4j check-exact x2", "psg4j", "check-exact"),
    ("psg4j check-sketch x2", "psg4j", "check-sketch"),
    ("Opacus check", "python", "opacus_check"),
    ("psg4j backward", "psg4j", "backward"),
    ("torch backward", "python", "batched_backward"),
)

# (label, numerator column, denominator column)
RATIOS = (
    ("torch.func / psg4j vmap", "torch.func", "psg4j vmap"),
    ("JAX / psg4j vmap", "JAX jit(vmap(grad))", "psg4j vmap"),
    ("psg4j vmap / psg4j backward", "psg4j vmap", "psg4j backward"),
    ("loop / psg4j microbatch", "Python bare loop", "psg4j microbatch"),
    ("Opacus check / check-exact", "Opacus check", "psg4j check-exact x2"),
    ("Opacus check / check-sketch", "Opacus check", "psg4j check-sketch x2"),
    ("check-exact / backward", "psg4j check-exact x2", "psg4j backward"),
    ("check-sketch / backward", "psg4j check-sketch x2", "psg4j backward"),
)


def load(paths, side):
    """{(suite, batch, method): [median per round]} and the thread counts the files report."""
    cells, threads = {}, set()
    for path in paths:
        with open(path) as f:
            root = json.load(f)
        if side == "python":
            threads.add(root["threads"])
        for r in root["results"]:
            if side == "psg4j":
                threads.add(r["threads"])
            if r["median_ms"] is not None:
                cells.setdefault((r["suite"], r["batch"], r["method"]), []).append(r["median_ms"])
    return cells, threads


def fmt(v, suffix=""):
    if v is None:
        return "-"
    digits = 1 if v >= 100 else 2 if v >= 10 else 3 if v >= 1 else 4
    return f"{v:.{digits}f}{suffix}"


def markdown(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--psg4j", nargs="+", required=True)
    ap.add_argument("--python", nargs="+", required=True)
    args = ap.parse_args()
    sides = {"psg4j": load(args.psg4j, "psg4j"), "python": load(args.python, "python")}
    threads = sides["psg4j"][1] | sides["python"][1]
    if len(threads) != 1:
        sys.exit(f"the rounds ran at different thread counts {sorted(threads)}: compare one count at a time")
    batches = sorted({k[1] for side in sides.values() for k in side[0]})
    rounds = {name: len(paths) for name, paths in (("psg4j", args.psg4j), ("python", args.python))}

    def cell(suite, batch, column):
        _, side, method = next(c for c in COLUMNS if c[0] == column)
        values = sides[side][0].get((suite, batch, method))
        return statistics.median(values) if values else None

    present = [c[0] for c in COLUMNS if any(cell(s, b, c[0]) is not None for s in SUITES for b in batches)]
    print(f"threads {threads.pop()}; ms, median over rounds (psg4j {rounds['psg4j']}, Python {rounds['python']}) "
          "of each round's median; checks: both reductions, probes included")
    rows = [[str(b), s] + [fmt(cell(s, b, c)) for c in present] for b in batches for s in SUITES
            if any(cell(s, b, c) is not None for c in present)]
    print(markdown(["B", "model"] + present, rows))

    ratios = [r for r in RATIOS if r[1] in present and r[2] in present]
    print("\nratios: Python's / psg4j's above 1 means psg4j is faster; x / backward is a cost in batched "
          "backwards; 'median' is over the models at that B")
    rows = []
    for b in batches:
        per_ratio = {r[0]: [] for r in ratios}
        for s in SUITES:
            row = [str(b), s]
            for label, num, den in ratios:
                n, d = cell(s, b, num), cell(s, b, den)
                v = n / d if n is not None and d else None
                if v is not None:
                    per_ratio[label].append(v)
                row.append(fmt(v, "x"))
            if any(c != "-" for c in row[2:]):
                rows.append(row)
        rows.append([str(b), "**median**"] + [fmt(statistics.median(per_ratio[r[0]]) if per_ratio[r[0]] else None,
                                                  "x") for r in ratios])
    print(markdown(["B", "model"] + [r[0] for r in ratios], rows))

    if len(batches) >= 2:
        lo, hi = batches[0], batches[-1]
        print(f"\ncheck cost against B: time at B = {hi} / time at B = {lo} (B ratio {hi / lo:g}; linear in B "
              "gives at most that)")
        checks = [c for c in ("psg4j check-exact x2", "psg4j check-sketch x2", "Opacus check") if c in present]
        rows = [[s] + [fmt(cell(s, hi, c) / cell(s, lo, c) if cell(s, hi, c) and cell(s, lo, c) else None)
                       for c in checks] for s in SUITES]
        print(markdown(["model"] + checks, [r for r in rows if any(c != "-" for c in r[1:])]))


if __name__ == "__main__":
    main()
