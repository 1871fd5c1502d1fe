"""``napari-sam data fetch``: the packaged sample data into the cache."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["fetch"], nargs="?", default="fetch")
    p.add_argument("--cache-dir", default=None)


def run(args: argparse.Namespace) -> int:
    from napari_sam.io.samples import NUCLEI_IMAGE, NUCLEI_LABELS, fetch_file

    for item in (NUCLEI_IMAGE, NUCLEI_LABELS):
        print(fetch_file(item, args.cache_dir))
    return 0
