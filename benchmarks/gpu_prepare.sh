#!/usr/bin/env bash
# Prepare what benchmarks/gpu_check.sh needs on a bare GPU machine that cannot reach the network: run here
# (where pip reaches PyPI), from the repo root. It fills three folders that git ignores (.git/info/exclude):
#   .whl/       the core's dependencies the GPU image lacks (dask, partd, locket, psygnal), Python 3.12
#               wheels at this .venv's versions (2 MB)
#   .whl_zarr/  zarr with numcodecs, donfig and google-crc32c (10 MB): reading a TIFF lazily needs zarr;
#               without it the check's label stage reads its stack from a .npy file instead
#   .gpucache/  the LiteMedSAM checkpoint and the nuclei sample (a copy of ~/.cache/napari-sam, 39 MB)
# Then, on the device tool: run(command="benchmarks/gpu_check.sh", carry=[".whl", ".gpucache"], timeout_s=540).
# The working tree (~22 MB) plus .whl and .gpucache fit the tool's 64 MiB; .whl_zarr on top does not, so
# carry it only where the limit allows.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
py="${PYTHON:-.venv/bin/python}"
for d in /.whl/ /.whl_zarr/ /.gpucache/; do grep -qxF "$d" .git/info/exclude 2>/dev/null || echo "$d" >>.git/info/exclude; done
mkdir -p .whl .whl_zarr .gpucache
download() {  # folder, then package names: wheels for the GPU image's Python at this .venv's versions
  local dest="$1"
  shift
  for name in "$@"; do
    version="$("$py" -c "import importlib.metadata as m; print(m.version('$name'))")"
    "$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any -d "$dest" "$name==$version"
  done
}
download .whl dask partd locket psygnal
download .whl_zarr zarr numcodecs donfig google-crc32c
src="${NAPARI_SAM_CACHE:-$HOME/.cache/napari-sam}"
"$py" -c "from napari_sam.models.checkpoints import fetch_checkpoint; from napari_sam.models.registry import get_spec; \
from napari_sam.io.samples import nuclei; fetch_checkpoint(get_spec('lite_medsam')); nuclei()"
cp -r "$src"/checkpoints "$src"/data .gpucache/
rm -f .gpucache/checkpoints/*.part
du -sh .whl .whl_zarr .gpucache
