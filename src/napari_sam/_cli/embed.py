"""``napari-sam embed INPUT -o CACHE.zarr``: embed a large image or stack into a persistent cache.

Run it again to resume an interrupted run; a finished cache is reopened without running the encoder,
a stale one (other data, model or settings) is rebuilt.
"""

from __future__ import annotations

import argparse
import sys
import time

from napari_sam._cli.encoder_options import add_encoder_options, encoder_settings
from napari_sam.models import DEFAULT_MODEL


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="image: TIFF/BigTIFF/OME-TIFF, zarr folder, .npy, or PNG/JPEG")
    p.add_argument(
        "-o", "--output", required=True, help="embedding cache folder (e.g. image.embeddings.zarr)"
    )
    p.add_argument("--model", default=DEFAULT_MODEL, help="registered model name or checkpoint path")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps")
    add_encoder_options(p)
    p.add_argument("--stack-axis", type=int, default=None, help="plane axis of a (Z, Y, X) / (T, Y, X) stack")
    p.add_argument("--channel-axis", type=int, default=None, help="channel axis of a multichannel image")
    p.add_argument("--planes", default=None, help="planes to embed, e.g. 0-9,20 (default: all)")
    p.add_argument(
        "--tile-size",
        type=int,
        default=None,
        help="tile side in image pixels (default: the model input; k×input embeds at 1/k scale)",
    )
    p.add_argument("--halo", type=int, default=None, help="tile halo in pixels (default: tile size / 8)")
    p.add_argument("--batch-size", type=int, default=4, help="tiles per encoder forward pass")
    p.add_argument("--series", type=int, default=0, help="TIFF series")
    p.add_argument("--level", type=int, default=0, help="pyramid level (0 = full resolution)")
    p.add_argument("--float32", action="store_true", help="store float32 embeddings (default float16)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def parse_planes(text: str | None) -> list[int] | None:
    """``"0-3,7"`` → [0, 1, 2, 3, 7]; None → None."""
    if text is None:
        return None
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part:
                a, b = part.split("-", 1)
                out.extend(range(int(a), int(b) + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise ValueError(f"--planes {text!r}: expected plane numbers and ranges like 0-9,20") from None
    return out


def run(args: argparse.Namespace) -> int:
    from napari_sam.io.images import read_image
    from napari_sam.segmenter import Segmenter

    planes = parse_planes(args.planes)
    data = read_image(args.input, series=args.series, level=args.level)
    seg = Segmenter(
        args.model,
        device=args.device,
        batch_size=args.batch_size,
        **encoder_settings(args),
    )
    t0 = time.perf_counter()
    seg.set_image(
        data,
        cache=args.output,
        stack_axis=args.stack_axis,
        channel_axis=args.channel_axis,
        tile_size=args.tile_size,
        halo=args.halo,
        encode=False,
        cache_dtype="float32" if args.float32 else "float16",
    )
    store = seg.store
    p, t = store.shape
    why = f" (changed: {', '.join(store.changed)})" if store.changed else ""
    print(
        f"{args.output}: {store.status}{why}; {p} plane(s) × {t} tile(s) of {seg.grid.tile_size} px, "
        f"{store.count_done()} done; device {seg.model.device} ({seg.model.runs_as})",
        file=sys.stderr,
    )
    bar = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(unit="tile", file=sys.stderr)

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.n = done
            bar.refresh()

    try:
        encoded = seg.encode_planes(planes, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    dt = time.perf_counter() - t0
    rate = f", {encoded / dt:.2f} tiles/s" if encoded and dt > 0 else ""
    print(
        f"encoded {encoded} tile(s) in {dt:.1f} s{rate}; {store.count_done()}/{p * t} done", file=sys.stderr
    )
    return 0
