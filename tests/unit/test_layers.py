"""The dependency rule, checked on the source: every import points one way, no cycles.

domain <- ports <- services <- adapters / providers <- container <- edges (http,
workers, cli) <- app.py. ``observability`` and ``resources`` are leaves that
import nothing of ours; ``settings`` reads the environment into domain values.
Imports inside functions count as much as those at the top.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
LEAVES = frozenset({"observability", "resources"})
# Which of our layers each layer may import (itself included where listed).
ALLOWED: dict[str, frozenset[str]] = {
    "domain": frozenset({"domain"}),
    "ports": frozenset({"domain"}),
    "services": frozenset({"domain", "ports", "services"}),
    "observability": frozenset(),
    "resources": frozenset(),
    "settings": frozenset({"domain", "resources"}),
    "adapters": frozenset({"domain", "ports", "adapters", "resources", "settings"}),
    "providers": frozenset({"domain", "ports", "adapters", "resources", "settings", "providers"}),
    "container": frozenset({"domain", "ports", "services", "adapters", "providers", "resources",
                            "settings", "observability"}),
    "http": frozenset({"domain", "ports", "services", "resources", "observability", "container",
                       "http"}),
    "workers": frozenset({"domain", "ports", "resources", "observability", "container", "workers"}),
    "cli": frozenset({"domain", "services", "resources", "settings", "container"}),
    "app": frozenset({"observability", "container", "http", "workers"}),
}
# Outside libraries the pure layers may use: computation only, no I/O.
PURE_LIBRARIES = frozenset({"phonenumbers"})
PURE_LAYERS = frozenset({"domain", "ports", "services"})


def layer_of(module: str) -> str:
    if module == "app":
        return "app"
    parts = module.split(".")
    assert parts[0] == "chalicelib", module
    return parts[1] if len(parts) > 1 else "chalicelib"


def our_modules() -> dict[str, Path]:
    found = {"app": ROOT / "app.py"}
    for path in sorted((ROOT / "chalicelib").rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports_of(path: Path, module: str) -> set[str]:
    """Every module ``path`` imports, top level or deferred, as absolute names."""
    names: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            names.add(base)
            names |= {f"{base}.{alias.name}" for alias in node.names}
    return names


def graph() -> dict[str, set[str]]:
    """Our modules and which of ours each imports."""
    modules = our_modules()
    return {m: {i for i in imports_of(p, m) if i in modules and i != m}
            for m, p in modules.items()}


def test_every_import_points_the_allowed_way() -> None:
    wrong = [f"{m} -> {i}" for m, deps in graph().items() for i in sorted(deps)
             if layer_of(i) not in ALLOWED.get(layer_of(m), frozenset()) | {"chalicelib"}]
    assert wrong == []


def test_no_import_cycles() -> None:
    g = graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the path, 2 done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(g[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(g):
        if start not in state:
            visit(start, [start])
    assert cycles == []


def test_the_pure_layers_use_only_the_standard_library_and_pure_libraries() -> None:
    allowed_outside = set(sys.stdlib_module_names) | PURE_LIBRARIES | {"chalicelib"}
    offending = []
    for module, path in our_modules().items():
        if module == "app" or layer_of(module) not in PURE_LAYERS:
            continue
        for name in imports_of(path, module):
            if name.split(".")[0] not in allowed_outside:
                offending.append(f"{module} imports {name}")
    assert offending == []


def test_the_checker_catches_a_wrong_way_import(tmp_path: Path) -> None:
    source = "from chalicelib.container import get_container\n"
    path = tmp_path / "sender.py"
    path.write_text(source)
    found = imports_of(path, "chalicelib.services.sender")
    assert "chalicelib.container" in found
    assert layer_of("chalicelib.container") not in ALLOWED["services"]
