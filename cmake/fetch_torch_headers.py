#!/usr/bin/env python3
"""Fetch the LibTorch headers of one exact torch version with pip and cache them outside the repo.

The bytedeco jar ships LibTorch's libraries but no headers. The headers of the same version come
from the torch wheel on PyPI. We take the manylinux aarch64 wheel: it is the smallest Linux wheel of
a release (~146 MB against ~900 MB for x86_64, which bundles CUDA), and the headers are
architecture-independent Linux/GCC headers built with the same cxx11 ABI. (The macOS wheel is
smaller still but its generated headers differ: MPS kernels, other ATen/Config.h switches.)

nlohmann/json (needed by ATen/functorch/Interpreter.h, absent from the wheel) comes from its own
PyPI package.

--variant cuda (the -Pgpu build) takes the x86_64 wheel instead (~915 MB, a CUDA build): only its
generated headers declare the CUDA parts (c10/cuda/impl/cuda_cmake_macros.h, ATen/cuda/CUDAConfig.h),
and its ATen/Config.h, caffe2/core/macros.h and sleef.h are those of an x86_64 CUDA build. They are
cached apart from the CPU ones (libtorch-<version>-cuda).

Prints the include directory on success. Exit status 2 with one clear line on any failure.
"""
import argparse
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile

WHEEL_PLATFORMS = {"cpu": "manylinux_2_28_aarch64", "cuda": "manylinux_2_28_x86_64"}
WHEEL_PYTHON = "3.11"
NLOHMANN_VERSION = "3.12.0"


def fail(message):
    print(f"psg4j build: {message}", file=sys.stderr)
    sys.exit(2)


def pip_download(requirement, dest, binary_platform=None):
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-q", "-d", str(dest), requirement]
    if binary_platform:
        cmd += ["--platform", binary_platform, "--python-version", WHEEL_PYTHON]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        fail(f"'pip download {requirement}' failed (is PyPI reachable through pip?): "
             f"{result.stderr.strip().splitlines()[-1] if result.stderr.strip() else result.returncode}")
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        fail(f"pip download {requirement} produced no wheel in {dest}")
    return wheels[0]


def extract(wheel, prefix, target):
    """Extract the members of `wheel` under `prefix` into `target`, dropping the prefix."""
    with zipfile.ZipFile(wheel) as archive:
        members = [m for m in archive.namelist() if m.startswith(prefix) and not m.endswith("/")]
        if not members:
            fail(f"{wheel.name} holds no {prefix} folder")
        for member in members:
            out = target / member[len(prefix):]
            out.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst)


def headers_version(include):
    header = include / "torch" / "headeronly" / "version.h"
    if not header.exists():
        header = include / "torch" / "csrc" / "api" / "include" / "torch" / "version.h"
    if not header.exists():
        return None
    text = header.read_text()
    parts = [re.search(rf"#define TORCH_VERSION_{k} (\d+)", text) for k in ("MAJOR", "MINOR", "PATCH")]
    if not all(parts):
        return None
    return ".".join(p.group(1) for p in parts)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", required=True, help="exact torch version, e.g. 2.10.0")
    parser.add_argument("--cache", required=True, help="cache folder outside the repository")
    parser.add_argument("--variant", choices=sorted(WHEEL_PLATFORMS), default="cpu",
                        help="cpu: the small aarch64 wheel's headers; cuda: the x86_64 CUDA wheel's")
    args = parser.parse_args()

    suffix = "" if args.variant == "cpu" else f"-{args.variant}"
    root = pathlib.Path(args.cache).expanduser() / f"libtorch-{args.version}{suffix}"
    include = root / "include"
    stamp = root / "complete"
    if stamp.exists():
        found = headers_version(include)
        if found != args.version:
            fail(f"cached LibTorch headers in {include} are version {found}, but the bytedeco "
                 f"preset is {args.version}: delete {root} and build again")
        print(include)
        return

    if root.exists():
        shutil.rmtree(root)
    with tempfile.TemporaryDirectory(prefix="psg4j-wheels-") as tmp:
        tmp = pathlib.Path(tmp)
        (tmp / "torch").mkdir()
        (tmp / "json").mkdir()
        torch_wheel = pip_download(f"torch=={args.version}", tmp / "torch",
                                   WHEEL_PLATFORMS[args.variant])
        json_wheel = pip_download(f"nlohmann-json=={NLOHMANN_VERSION}", tmp / "json")
        staging = root.with_name(root.name + ".partial")
        if staging.exists():
            shutil.rmtree(staging)
        extract(torch_wheel, "torch/include/", staging / "include")
        json_header = None
        with zipfile.ZipFile(json_wheel) as archive:
            for name in archive.namelist():
                if name.endswith("nlohmann/json.hpp"):
                    json_header = name
        if json_header is None:
            fail(f"{json_wheel.name} holds no nlohmann/json.hpp")
        extract(json_wheel, json_header[: -len("nlohmann/json.hpp")], staging / "include")
        found = headers_version(staging / "include")
        if args.variant == "cuda" and not (staging / "include/c10/cuda/impl/cuda_cmake_macros.h").exists():
            fail(f"the torch wheel pip gave ({torch_wheel.name}) is not a CUDA build "
                 f"(no c10/cuda/impl/cuda_cmake_macros.h)")
        if found != args.version:
            fail(f"the torch wheel pip gave ({torch_wheel.name}) has headers of version {found}, "
                 f"not {args.version}")
        staging.rename(root)
    stamp.write_text(args.version + "\n")
    print(include)


if __name__ == "__main__":
    main()
