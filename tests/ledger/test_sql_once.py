"""No SQL statement is written twice in the code (issue 14): one text per query, for both backends.

A statement is a string literal (or f-string, its substitutions read as ``{}``)
that starts with SELECT, INSERT, UPDATE, DELETE or WITH, outside docstrings,
tests and migrations.  Two are the same when they are equal once placeholders
(``$N``, ``?N``, ``?``), casts and whitespace are set aside, i.e. a statement
repeated for the other backend's placeholder style counts.

Run as a script to print the figures for some files::

    .venv/bin/python tests/ledger/test_sql_once.py tagledger/ledger/sqlite.py tagledger/ledger/postgres.py
"""

from __future__ import annotations

import ast
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("tagledger", "gateway", "cloud", "edge")
_STATEMENT = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\s", re.IGNORECASE)


def _normal(sql: str) -> str:
    sql = re.sub(r"\$\d+|\?\d*|\{\d\}", "?", sql)
    sql = re.sub(r"::\w+(\[\])?", "", sql)
    return re.sub(r"\s+", " ", sql).strip().lower()


def statements(path: Path) -> list[tuple[str, int]]:
    """The normalised statement texts of one module, with their lines."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr):
                skip.add(id(first.value))  # a docstring
        if isinstance(node, ast.JoinedStr):
            skip.update(id(v) for v in node.values)  # parts of an f-string, read with it
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        elif isinstance(node, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
        else:
            continue
        if _STATEMENT.match(text):
            found.append((_normal(text), node.lineno))
    return found


def repeated(paths: list[Path]) -> tuple[int, dict[str, list[str]]]:
    """How many statements the files hold, and each text written more than once with its places."""
    where: dict[str, list[str]] = defaultdict(list)
    total = 0
    for path in paths:
        for text, line in statements(path):
            total += 1
            where[text].append(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{line}")
    return total, {text: places for text, places in where.items() if len(places) > 1}


def code_files() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts)


def test_the_code_writes_no_sql_statement_twice() -> None:
    total, twice = repeated(code_files())
    assert total > 50, "the scan found too few statements: is the pattern still right?"
    assert not twice, "\n".join(f"{places}: {text}" for text, places in twice.items())


def test_a_statement_in_the_other_placeholder_style_counts_as_the_same(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text('A = "SELECT x FROM t WHERE a = $1 AND b = $2::text[]"\n')
    (tmp_path / "b.py").write_text('B = """select x from t\n where a = ?1 and b = ?"""\nC = "SELECT y FROM t"\n')
    total, twice = repeated([tmp_path / "a.py", tmp_path / "b.py"])
    assert total == 3
    assert list(twice) == ["select x from t where a = ? and b = ?"]


if __name__ == "__main__":
    files = [Path(a).resolve() for a in sys.argv[1:]] or code_files()
    n, dups = repeated(files)
    distinct = n - sum(len(places) - 1 for places in dups.values())
    print(f"{n} statements, {distinct} distinct texts, {len(dups)} written twice or more")
    for text, places in dups.items():
        print(f"  x{len(places)} {' '.join(places)}: {text[:100]}")
