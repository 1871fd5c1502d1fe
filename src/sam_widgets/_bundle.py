"""Join the widget's ES modules (``static/*.js``) into the one ES module string anywidget loads.

anywidget hands ``_esm`` to the browser as text and imports it from a ``blob:`` URL, where an ``import``
of a sibling file by relative path cannot resolve. The widget's source stays split by role in plain ES
modules (each loads as it is in a browser or in node); this module inlines them at Python import time,
so users run no build step and nothing is fetched from a CDN.

Only the forms the widget uses are accepted, and anything else is a ``ValueError`` naming the file and
line (never a silently broken bundle):

- ``import { a, b as c } from "./file.js";`` (one or more lines), from a file in the same folder;
- ``export function f``, ``export async function f``, ``export const x``, ``export class C``;
- ``export default <expression>;`` (the entry's default export is the bundle's).

Each file becomes one function scope evaluated once, dependencies first (as ES modules are), returning
its exports; an import becomes a destructuring of the exporting file's object. ``export let`` is refused:
a destructured copy would not follow later assignments (ES modules' live bindings).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_NAME = r"[A-Za-z_$][\w$]*"
_IMPORT = re.compile(
    r"^import\s*\{(?P<names>[^}]*)\}\s*from\s*(?P<quote>[\"'])(?P<spec>[^\"']+)(?P=quote)\s*;?[ \t]*$", re.M
)
_IMPORT_NAME = re.compile(rf"^(?P<name>{_NAME})(?:\s+as\s+(?P<alias>{_NAME}))?$")
_EXPORT_DECL = re.compile(
    rf"^export\s+(?P<kind>(?:async\s+)?function\b\s*|const\s+|class\s+)(?P<name>{_NAME})", re.M
)
_EXPORT_DEFAULT = re.compile(r"^export\s+default\s+", re.M)
_LEFTOVER = re.compile(r"^[ \t]*(?:import|export)\b|\bimport\s*\(", re.M)
_LOCAL_FILE = re.compile(r"^\./[\w.-]+\.js$")
_DEFAULT = "__default__"


@dataclass
class _Module:
    path: Path
    body: str
    imports: list[tuple[str, list[tuple[str, str]]]]  # (file name, [(exported name, local name)])
    exports: list[str]

    @property
    def var(self) -> str:
        return "__module_" + re.sub(r"\W", "_", self.path.name)


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _parse(path: Path) -> _Module:
    text = path.read_text(encoding="utf-8")
    imports: list[tuple[str, list[tuple[str, str]]]] = []

    def replace_import(m: re.Match) -> str:
        spec = m["spec"]
        where = f"{path.name}:{_line_of(text, m.start())}"
        if not _LOCAL_FILE.match(spec):
            raise ValueError(
                f"{where}: import from {spec!r}: the widget bundles only files of its own folder "
                f'(import {{ name }} from "./file.js"); a package or URL import cannot ship without a CDN'
            )
        names = []
        for item in (s.strip() for s in m["names"].split(",")):
            if not item:
                continue
            parsed = _IMPORT_NAME.match(item)
            if not parsed:
                raise ValueError(f"{where}: cannot read the imported name {item!r}")
            names.append((parsed["name"], parsed["alias"] or parsed["name"]))
        imports.append((spec[2:], names))
        return f"\0import {len(imports) - 1}\0" + "\n" * m.group(0).count("\n")

    body = _IMPORT.sub(replace_import, text)
    exports: list[str] = []

    def replace_export(m: re.Match) -> str:
        exports.append(m["name"])
        return m["kind"] + m["name"]

    body = _EXPORT_DECL.sub(replace_export, body)
    defaults = list(_EXPORT_DEFAULT.finditer(body))
    if len(defaults) > 1:
        raise ValueError(f"{path.name}: more than one 'export default'")
    if defaults:
        body = _EXPORT_DEFAULT.sub(f"const {_DEFAULT} = ", body)
        exports.append("default")
    leftover = _LEFTOVER.search(body)
    if leftover:
        line = body[leftover.start() :].splitlines()[0].strip()
        raise ValueError(
            f"{path.name}:{_line_of(body, leftover.start())}: {line!r} is not a form the widget's bundler "
            "inlines; use 'import { name } from \"./file.js\";' and 'export function|const|class name' "
            "or 'export default'"
        )
    if len(set(exports)) != len(exports):
        raise ValueError(f"{path.name}: a name is exported twice: {sorted(exports)}")
    return _Module(path, body, imports, exports)


def _ordered(entry: Path) -> list[_Module]:
    """The modules reachable from ``entry``, each after the modules it imports (depth first)."""
    done: dict[Path, _Module] = {}
    order: list[_Module] = []

    def visit(path: Path, chain: tuple[Path, ...]) -> _Module:
        if path in chain:
            cycle = " -> ".join(p.name for p in (*chain[chain.index(path) :], path))
            raise ValueError(f"import cycle between the widget's modules: {cycle}; move the shared part out")
        if path in done:
            return done[path]
        if not path.is_file():
            raise ValueError(f"{chain[-1].name} imports ./{path.name}, which does not exist in {path.parent}")
        module = _parse(path)
        for name, wanted in module.imports:
            dep = visit(path.parent / name, (*chain, path))
            for exported, _ in wanted:
                if exported not in dep.exports:
                    raise ValueError(
                        f"{path.name} imports {exported!r} from ./{name}, which exports only "
                        f"{', '.join(dep.exports) or 'nothing'}"
                    )
        done[path] = module
        order.append(module)
        return module

    visit(entry.resolve(), ())
    return order


def bundle(entry: str | Path) -> str:
    """One ES module with ``entry`` and every module it imports inlined (see the module docstring).

    Parameters
    ----------
    entry
        The entry file; its ``export default`` becomes the bundle's.

    Returns
    -------
    str
        JavaScript source of one ES module with no ``import`` statements.
    """
    modules = _ordered(Path(entry))
    by_name = {m.path.name: m for m in modules}
    names = ", ".join(m.path.name for m in modules)
    parts = [f"// Bundled by sam_widgets._bundle from {names}: edit those files, not this text.\n"]
    for module in modules:

        def imported(m: re.Match, module: _Module = module) -> str:
            name, names = module.imports[int(m[1])]
            fields = ", ".join(e if e == local else f"{e}: {local}" for e, local in names)
            return f"const {{ {fields} }} = {by_name[name].var};"

        body = re.sub(r"\0import (\d+)\0", imported, module.body)
        fields = ", ".join(f"default: {_DEFAULT}" if e == "default" else e for e in module.exports)
        parts.append(
            f"// ---- {module.path.name} ----\nconst {module.var} = (() => {{\n{body.rstrip()}\n"
            f"return {{ {fields} }};\n}})();\n"
        )
    entry_module = modules[-1]
    if "default" not in entry_module.exports:
        raise ValueError(f"{entry_module.path.name}: the entry module has no 'export default'")
    parts.append(f"export default {entry_module.var}.default;\n")
    return "\n".join(parts)
