"""Run every benchmark in turn (``make bench``); each prints its own table and JSON line.

python benchmarks/run_all.py [NAME ...]
# NAME: core, tiles, automatic, batch, napari_preview, napari_everything
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
ORDER = ["core", "tiles", "automatic", "batch", "napari_preview", "napari_everything"]


def main(argv: list[str]) -> int:
    names = argv or ORDER
    failed = []
    for name in names:
        script = HERE / f"bench_{name}.py"
        if not script.exists():
            print(f"no benchmark {name!r}; choose from {', '.join(ORDER)}", file=sys.stderr)
            return 2
        cmd = [sys.executable, str(script)]
        if name.startswith("napari_"):  # needs a display
            cmd = ["xvfb-run", "-a", "-s", "-screen 0 1600x1200x24", *cmd]
        print(f"== {name} ==", flush=True)
        if subprocess.run(cmd).returncode != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
