"""The ``napari-sam`` command line. Each sub-command lives in its own module and registers here."""

from __future__ import annotations

import argparse
import sys

from napari_sam import __version__

# (name, module, help): the module has add_arguments(parser) and run(args) -> int
COMMANDS = [
    ("models", "napari_sam._cli.models", "list the registered models or fetch one into the cache"),
    ("data", "napari_sam._cli.data", "fetch the packaged sample data into the cache"),
    ("demo", "napari_sam._cli.demo", "the main job: label a sample TIFF stack with the default model"),
    ("label", "napari_sam._cli.label", "label TIFF/OME-TIFF/zarr images and stacks in batch (local or dask)"),
    (
        "embed",
        "napari_sam._cli.embed",
        "embed a large image or stack into a persistent, resumable tile cache",
    ),
    (
        "finetune",
        "napari_sam._cli.finetune",
        "fine-tune a model on annotated images (instance labels), on a CPU in minutes",
    ),
]


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(prog="napari-sam", description="Segment Anything for microscopy images.")
    parser.add_argument("--version", action="version", version=f"napari-sam {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module, help_text in COMMANDS:
        mod = importlib.import_module(module)
        p = sub.add_parser(name, help=help_text, description=help_text)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    from napari_sam.models.checkpoints import FetchError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except (ValueError, FetchError) as err:  # user and download errors: one clear line, no traceback
        print(f"napari-sam {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
