"""Import boundaries that licences and deployment depend on.

sllurp is GPL-3.0-only: it may be imported by edge/llrp.py and by no other module
of the product (the simulator speaks LLRP with its own codec).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tagledger", "edge", "gateway", "cloud")
SLLURP_ALLOWED = {Path("edge/llrp.py")}


def _is_dynamic_import(node: ast.Call) -> bool:
    name = getattr(node.func, "attr", getattr(node.func, "id", ""))
    return name in {"import_module", "__import__"} and bool(node.args)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Call) and _is_dynamic_import(node):
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.add(arg.value)
    return found


def test_only_edge_llrp_imports_sllurp() -> None:
    offenders = []
    checked = 0
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            checked += 1
            rel = path.relative_to(ROOT)
            if rel in SLLURP_ALLOWED:
                continue
            if any(name == "sllurp" or name.startswith("sllurp.") for name in _imports(path)):
                offenders.append(str(rel))
    assert checked > 10
    assert not offenders, f"sllurp (GPL-3.0) imported outside edge/llrp.py: {offenders}"


def test_edge_llrp_is_where_sllurp_lives() -> None:
    assert any(n.startswith("sllurp") for n in _imports(ROOT / "edge" / "llrp.py"))


def test_the_check_sees_dynamic_imports_too(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import importlib\nimportlib.import_module('sllurp.llrp')\n")
    assert "sllurp.llrp" in _imports(bad)
