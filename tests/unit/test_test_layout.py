"""The test suite's own layout: no module imports a test module or a conftest.

Shared helpers live in ``tests/support``; fixtures live in conftest files and
reach tests by pytest's lookup, never by import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.paths import ROOT

pytestmark = pytest.mark.unit

TESTS = ROOT / "tests"


def _is_test_or_conftest(module: str) -> bool:
    last = module.rsplit(".", 1)[-1]
    return last == "conftest" or last.startswith("test_")


def _absolute(module: str | None, level: int, package: str) -> str:
    """The absolute name of ``from <level dots><module> import ...`` inside ``package``."""
    if level == 0:
        return module or ""
    parts = package.split(".")
    base = parts[: len(parts) - (level - 1)]
    return ".".join([*base, module] if module else base)


def forbidden_imports(source: str, package: str) -> list[tuple[int, str]]:
    """(line, module) of every import of a ``test_*`` module or a conftest in ``source``.

    ``from a import b`` counts as importing ``a`` and ``a.b``; ``package`` is the
    package of the module ``source`` is read from (for relative imports).
    """
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node.module, node.level, package)
            modules = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        found += [(node.lineno, m) for m in modules if _is_test_or_conftest(m)]
    return found


def _package_of(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).parent.parts)


def test_no_module_of_the_suite_imports_a_test_module_or_a_conftest() -> None:
    files = sorted(TESTS.rglob("*.py"))
    assert TESTS / "conftest.py" in files and TESTS / "support" / "http.py" in files
    offending = [f"{path.relative_to(ROOT)}:{line}: {module}"
                 for path in files
                 for line, module in forbidden_imports(path.read_text(), _package_of(path))]
    assert offending == [], "move what they import to tests/support"


@pytest.mark.parametrize("source, package", [
    ("from tests.functional.test_api import post", "tests.functional"),
    ("import tests.functional.test_workers", "tests.reliability"),
    ("from tests.conftest import ROOT", "tests.e2e"),
    ("from tests.e2e import conftest", "tests.reliability"),
    ("from .test_chain import key_with_outcomes", "tests.e2e"),
    ("from ..functional.test_pipeline import accept", "tests.reliability"),
    ("from . import conftest", "tests.e2e"),
    ("def helper():\n    from tests.e2e.test_chain import SEED_BODY\n", "tests.e2e"),
])
def test_an_import_of_a_test_module_or_a_conftest_is_found(source: str, package: str) -> None:
    assert len(forbidden_imports(source, package)) == 1


@pytest.mark.parametrize("source", [
    "from tests.support.http import SEED_BODY, post",
    "from tests.support import queues",
    "import pytest",
    "from chalicelib.domain.status import Status",
    "from . import support",
])
def test_imports_of_helpers_and_libraries_are_allowed(source: str) -> None:
    assert forbidden_imports(source, "tests") == []
