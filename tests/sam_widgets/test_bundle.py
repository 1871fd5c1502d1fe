"""The widget's ES modules and the bundler that joins them into the one module anywidget loads.

The bundles run in node (a real JavaScript engine, not a text comparison); the widget itself runs in
JupyterLab in ``test_browser_jupyterlab.py``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from sam_widgets._bundle import bundle
from sam_widgets._plot import label_colors

STATIC = Path(__file__).resolve().parents[2] / "src" / "sam_widgets" / "static"
NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed (apt-get install nodejs)")


def _write(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (folder / name).write_text(text)


def _run_module(path: Path, script: str) -> str:
    """Import the ES module at ``path`` in node as ``m`` and print what ``script`` logs."""
    code = f"import({json.dumps(path.as_uri())}).then((m) => {{ {script} }});"
    out = subprocess.run(
        [NODE, "--input-type=module", "-e", code], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


@needs_node
def test_modules_are_inlined_once_in_dependency_order(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    _write(
        src,
        {
            "log.js": "export const seen = [];\nexport function note(x) { seen.push(x); }\n",
            # a diamond: entry -> a, b; a -> log; b -> log, a. Same local names in several files.
            "a.js": 'import { note } from "./log.js";\nnote("a");\nconst secret = 1;\n'
            "export function twice(x) { return 2 * x + secret - 1; }\n",
            "b.js": 'import {\n  note,\n  seen as order,\n} from "./log.js";\n'
            'import { twice } from "./a.js";\nnote("b");\nconst secret = 10;\n'
            "export class Box { constructor(v) { this.v = twice(v) + secret; } }\n"
            "export const ORDER = order;\n",
            "entry.js": 'import { Box, ORDER } from "./b.js";\nimport { twice as double } from "./a.js";\n'
            "export default { make: (v) => new Box(v).v, order: ORDER, double };\n",
        },
    )
    text = bundle(src / "entry.js")
    assert not re.search(r"^\s*import\b", text, re.M) and text.count("export default") == 1
    (out / "bundle.mjs").write_text(text)
    printed = _run_module(
        out / "bundle.mjs",
        "console.log(JSON.stringify([m.default.make(3), m.default.order, m.default.double(5)]));",
    )
    # each file ran once, dependencies first; private names of a and b did not collide
    assert json.loads(printed) == [16, ["a", "b"], 10]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"entry.js": 'import { x } from "lodash";\nexport default x;\n'}, "a package or URL import"),
        ({"entry.js": 'import { x } from "https://cdn.example.org/x.js";\nexport default x;\n'}, "URL"),
        (
            {"entry.js": 'import x from "./a.js";\nexport default x;\n', "a.js": "export default 1;\n"},
            "not a form",
        ),
        (
            {
                "entry.js": 'import * as a from "./a.js";\nexport default a;\n',
                "a.js": "export const b = 1;\n",
            },
            "not a form",
        ),
        ({"entry.js": "export let n = 1;\nexport default n;\n"}, "not a form"),
        ({"entry.js": "const n = 1;\nexport { n };\nexport default n;\n"}, "not a form"),
        ({"entry.js": 'const m = import("./a.js");\nexport default m;\n'}, "not a form"),
        (
            {"entry.js": 'import { y } from "./a.js";\nexport default y;\n', "a.js": "export const b = 1;\n"},
            "exports only b",
        ),
        ({"entry.js": 'import { y } from "./gone.js";\nexport default y;\n'}, "does not exist"),
        (
            {
                "entry.js": 'import { a } from "./a.js";\nexport default a;\n',
                "a.js": 'import { b } from "./b.js";\nexport const a = b;\n',
                "b.js": 'import { a } from "./a.js";\nexport const b = a;\n',
            },
            "import cycle between the widget's modules: a.js -> b.js -> a.js",
        ),
        ({"entry.js": "export const x = 1;\n"}, "no 'export default'"),
    ],
)
def test_forms_it_cannot_inline_are_refused_with_the_file_and_the_fix(tmp_path, files, message):
    _write(tmp_path, files)
    with pytest.raises(ValueError, match=re.escape(message)):
        bundle(tmp_path / "entry.js")


def test_the_widget_ships_as_its_bundled_modules():
    from sam_widgets.widget import SamWidget

    text = bundle(STATIC / "widget.js")
    assert str(SamWidget._esm) == text
    inlined = re.findall(r"^// ---- (\S+) ----$", text, re.M)
    # every module in static/ is used, and the roles each have their module
    assert sorted(inlined) == sorted(p.name for p in STATIC.glob("*.js"))
    assert {"view.js", "tiles.js", "prompts.js", "toolbar.js"} <= set(inlined) and inlined[-1] == "widget.js"


@needs_node
def test_the_widget_modules_load_as_they_are_and_bundled(tmp_path):
    """The source files are real ES modules (node imports them by relative path), and the bundle exports
    the same thing anywidget needs: a default object with render(). Neither touches the DOM on import.
    """
    plain = tmp_path / "plain"
    shutil.copytree(STATIC, plain)
    (plain / "package.json").write_text('{"type": "module"}')
    (tmp_path / "bundle.mjs").write_text(bundle(STATIC / "widget.js"))
    script = "console.log([Object.keys(m), Object.keys(m.default), typeof m.default.render].join(' '));"
    assert _run_module(plain / "widget.js", script).strip() == "default render function"
    assert _run_module(tmp_path / "bundle.mjs", script).strip() == "default render function"
    colors = "console.log(JSON.stringify([1, 2, 70000].map(m.labelColor)));"
    # the same colour for a label id as the Python plot (sam_widgets._plot.label_colors)
    ids = np.array([[1, 2, 70000]])
    expected = (label_colors(ids)[0, :, :3] * 255).round().astype(int).tolist()
    got = json.loads(_run_module(plain / "tiles.js", colors))
    assert np.abs(np.array(got) - np.array(expected)).max() <= 1, (got, expected)
