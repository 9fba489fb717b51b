"""The package's rooms stay small: no module over 300 lines. Test modules import no other."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "reminders_pipeline"
TESTS = PACKAGE.parent / "tests"
MAX_LINES = 300


def test_no_module_is_over_300_lines() -> None:
    sizes = {
        str(path.relative_to(PACKAGE)): len(path.read_text().splitlines())
        for path in PACKAGE.rglob("*.py")
    }
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def test_no_test_module_is_imported_by_its_bare_name() -> None:
    # ruff bans `tests.unit`, `tests.integration` and `tests.acceptance` (TID251); pytest
    # also puts each test folder on sys.path, so `import test_x` would work and evade it.
    bare = {path.stem for path in TESTS.rglob("test_*.py")} | {"conftest"}
    imports = {}
    for path in TESTS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                if name.split(".")[0] in bare:
                    imports[f"{path.relative_to(TESTS)}:{node.lineno}"] = name
    assert imports == {}
