#!/usr/bin/env bash
# Prepare what benchmarks/gpu_check.sh needs on a bare GPU machine that cannot reach the network: run here
# (where pip reaches PyPI), from the repo root. It fills two folders that git ignores (.git/info/exclude):
#   .whl/       the core's dependencies the GPU image lacks (dask, partd, locket, psygnal; zarr is not
#               needed: no cache or OME-Zarr is written), Python 3.12 wheels at this .venv's versions
#   .gpucache/  the LiteMedSAM checkpoint and the nuclei sample (a copy of ~/.cache/napari-sam)
# Then, on the device tool: run(command="benchmarks/gpu_check.sh", carry=[".whl", ".gpucache"], timeout_s=540)
# (the working tree, ~21 MB, plus these ~42 MB stay under the tool's 64 MiB)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
py="${PYTHON:-.venv/bin/python}"
for d in /.whl/ /.gpucache/; do grep -qxF "$d" .git/info/exclude 2>/dev/null || echo "$d" >>.git/info/exclude; done
mkdir -p .whl .gpucache
names="dask partd locket psygnal"
for name in $names; do
  version="$("$py" -c "import importlib.metadata as m; print(m.version('$name'))")"
  "$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any -d .whl "$name==$version"
done
src="${NAPARI_SAM_CACHE:-$HOME/.cache/napari-sam}"
"$py" -c "from napari_sam.models.checkpoints import fetch_checkpoint; from napari_sam.models.registry import get_spec; \
from napari_sam.io.samples import nuclei; fetch_checkpoint(get_spec('lite_medsam')); nuclei()"
cp -r "$src"/checkpoints "$src"/data .gpucache/
rm -f .gpucache/checkpoints/*.part
du -sh .whl .gpucache
