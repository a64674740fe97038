#!/usr/bin/env python3
"""Fetch the CUDA 13.1 runtime (headers and libraries) that bytedeco's GPU LibTorch needs, with pip.

The -Pgpu build links against bytedeco's linux-x86_64-gpu pytorch jar, which ships libtorch_cuda and
libc10_cuda but not CUDA itself: even its libtorch_cpu needs libcudart.so.13 and libcupti.so.13, and
libtorch_cuda needs cuBLAS, cuDNN, cuSPARSE, cuFFT, cuRAND, cuFile and NCCL. NVIDIA publishes exactly
those as PyPI wheels; the versions below are CUDA 13.1 Update 1's (bytedeco's cuda preset is
13.1-9.19). Two sets:

  all   every library libtorch_cuda, libtorch_cuda_linalg and bytedeco's torch_cuda preset load
        (~2 GB of wheels, 2.2 GB unpacked): the -Pgpu build's default, so that a machine with
        only the NVIDIA driver runs CUDA, and one without a GPU still loads the GPU natives (and
        runs on the CPU).
  link  cudart, cupti and the headers (~15 MB, 70 MB unpacked): what the native core compiles
        and links against, where the libraries come from elsewhere at run time (-Pcuda-redist:
        bytedeco's redist jars; or an installed CUDA 13.1 toolkit).

Layout: <cache>/cuda-13.1-<set>/{include,lib}; the libraries flattened into lib/ (their RUNPATH is
$ORIGIN, so they find each other there). With --properties FILE (set "all"), writes lib.dir=<lib>
there: NativeCore loads the CUDA libraries from it before bytedeco's torch.

Prints the include and the lib directory on success. Exit status 2 with one clear line on failure.
"""
import argparse
import pathlib
import shutil
import subprocess
import sys
import zipfile

CUDA = "13.1"
# pip --platform takes exact tags: every glibc from the wheels' oldest (2.17) to the torch wheel's (2.28)
PLATFORMS = [f"manylinux_2_{minor}_x86_64" for minor in range(28, 16, -1)] + ["manylinux2014_x86_64"]
PYTHON = "3.11"
# The headers cuda_runtime_api.h needs: the runtime's and crt/ (a wheel of its own since CUDA 13);
# ATen/cuda/CUDAContext.h's (cuda_fp16.h) also need CCCL's nv/target.
LINK_SET = [
    "nvidia-cuda-runtime==13.1.80",
    "nvidia-cuda-crt==13.1.115",
    "nvidia-cuda-cccl==13.1.115",
    "nvidia-cuda-cupti==13.1.115",
]
ALL_SET = LINK_SET + [
    "nvidia-cublas==13.2.1.1",
    "nvidia-cusparse==12.7.3.1",
    "nvidia-cusolver==12.0.9.81",
    "nvidia-cufft==12.1.0.78",
    "nvidia-curand==10.4.1.81",
    "nvidia-nvjitlink==13.1.115",
    "nvidia-cufile==1.16.1.26",
    "nvidia-nccl-cu13==2.28.9",
    "nvidia-cudnn-cu13==9.19.0.56",
]
SETS = {"link": LINK_SET, "all": ALL_SET}


def fail(message):
    print(f"psg4j build: {message}", file=sys.stderr)
    sys.exit(2)


def pip_download(requirements, dest):
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-q", "-d", str(dest), "--python-version", PYTHON]
    for platform in PLATFORMS:
        cmd += ["--platform", platform]
    result = subprocess.run(cmd + requirements, capture_output=True, text=True)
    if result.returncode != 0:
        last = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else result.returncode
        fail(f"'pip download' of the CUDA {CUDA} runtime wheels failed (is PyPI reachable through pip?): {last}")
    wheels = []
    for requirement in requirements:
        name, version = requirement.split("==")
        found = sorted(dest.glob(f"{name.replace('-', '_')}-{version}-*.whl"))
        if not found:
            fail(f"pip download {requirement} left no wheel in {dest}")
        wheels.append(found[0])
    return wheels


def unpack(wheel, include, lib):
    """Headers under nvidia/<x>/include/ into `include`; shared libraries under nvidia/<x>/lib/ into `lib`."""
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.namelist():
            parts = member.split("/")
            if member.endswith("/") or len(parts) < 4 or parts[0] != "nvidia":
                continue
            if parts[2] == "include":
                out = include.joinpath(*parts[3:])
            elif parts[2] == "lib" and ".so" in parts[-1] and len(parts) == 4:
                out = lib / parts[-1]
            else:
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst)


def write_properties(path, lib):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# written by cmake/fetch_cuda_runtime.py: where NativeCore finds CUDA {CUDA}\n"
                    f"lib.dir={lib.as_posix()}\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", required=True, help="cache folder outside the repository")
    parser.add_argument("--set", choices=sorted(SETS), default="all", dest="which")
    parser.add_argument("--properties", help="(set all) write lib.dir=<the lib folder> to this file")
    args = parser.parse_args()

    root = pathlib.Path(args.cache).expanduser() / f"cuda-{CUDA}-{args.which}"
    include, lib, stamp = root / "include", root / "lib", root / "complete"
    wanted = "\n".join(SETS[args.which]) + "\n"
    if not stamp.exists() or stamp.read_text() != wanted:
        if root.exists():
            shutil.rmtree(root)
        staging = root.with_name(root.name + ".partial")
        if staging.exists():
            shutil.rmtree(staging)
        # kept until the set is complete: an interrupted build resumes its downloads
        wheels = root.with_name(root.name + ".wheels")
        wheels.mkdir(parents=True, exist_ok=True)
        for wheel in pip_download(SETS[args.which], wheels):
            unpack(wheel, staging / "include", staging / "lib")
        for needed in ("include/cuda_runtime_api.h", "include/crt/host_defines.h", "lib/libcudart.so.13"):
            if not (staging / needed).exists():
                fail(f"the CUDA {CUDA} wheels held no {needed}")
        staging.rename(root)
        stamp.write_text(wanted)
        shutil.rmtree(wheels)
    if args.properties and args.which == "all":
        write_properties(args.properties, lib)
    elif args.properties:
        # CUDA comes from elsewhere (the redist jars): no stale folder of an earlier -Pgpu build
        pathlib.Path(args.properties).unlink(missing_ok=True)
    print(include)
    print(lib)


if __name__ == "__main__":
    main()
