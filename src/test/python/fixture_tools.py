"""What the fixture generators (make_fixtures.py, make_layer_matrix.py) share: running themselves
reproducibly and telling whether a regeneration changed any file."""

import argparse
import hashlib
import os
import sys


def digest_tree(root):
    """{path relative to root: sha256 of the file} for every file below root."""
    digests = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                digests[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return digests


def rerun_reproducibly(script, repo_root, marker, out_dir, quiet):
    """Re-executes `script` once (unless `marker` says this is that run) so that its output is
    byte-identical from run to run and from checkout to checkout:
      * TorchScript emits some class attributes (Final constants) in set order, which depends on
        string hash randomization: pin PYTHONHASHSEED;
      * TorchScript debug info records the source file name (and lines) of the custom modules:
        run the script from the repository root under its relative path."""
    if os.environ.get(marker) == "1":
        return
    env = dict(os.environ, PYTHONHASHSEED="0", **{marker: "1"})
    rel = os.path.relpath(os.path.abspath(script), repo_root)
    code = f"import runpy; runpy.run_path({rel!r}, run_name='__main__')"
    argv = [sys.executable, "-c", code, "--out", out_dir] + (["--quiet"] if quiet else [])
    os.chdir(repo_root)
    os.execve(sys.executable, argv, env)


def start(doc, default_out, script, repo_root, marker):
    """Parses --out and --quiet, then reruns `script` reproducibly (see rerun_reproducibly).
    Returns (absolute output folder, quiet)."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--out", default=default_out, help="output folder (default: %(default)s)")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    out_dir = os.path.abspath(args.out)
    rerun_reproducibly(script, repo_root, marker, out_dir, args.quiet)
    return out_dir, args.quiet


def regeneration_report(before, after):
    """One line: whether a regeneration over an existing folder changed any file."""
    changed = sorted(p for p in after if before.get(p) != after[p])
    return "regeneration: identical" if not changed else f"regeneration: changed files: {changed}"


def stale_files(after, case_names):
    """Files below the output folder that no case of this run wrote (the manifest aside)."""
    return sorted(p for p in after if p.split(os.sep)[0] not in case_names and p != "manifest.json")
