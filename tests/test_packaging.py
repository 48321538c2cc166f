"""What each extra installs, resolved by pip itself in a throwaway virtualenv.

The edge agent runs on small store hardware beside the readers: ``pip install
'tagledger[edge]'`` must not bring the server stack (FastAPI, SQLAlchemy) nor a
database driver.  The import-linter contracts check what edge code imports;
this checks what its install pulls in, transitive dependencies included.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SERVER_OR_DATABASE = {
    "fastapi",
    "starlette",
    "uvicorn",
    "sqlalchemy",
    "alembic",
    "asyncpg",
    "aiosqlite",
    "psycopg",
    "psycopg-binary",
    "psycopg2",
    "psycopg2-binary",
}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _resolve(extra: str, tmp_path: Path) -> set[str]:
    """Distributions ``pip install '.[extra]'`` would install into a clean virtualenv (dry run)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    # Only what the metadata needs is copied: building it in the shared working
    # tree would leave an egg-info directory behind.
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, project / name)
    report = tmp_path / "report.json"
    subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--dry-run",
            "--ignore-installed",
            "--report",
            str(report),
            f"{project}[{extra}]",
        ],
        check=True,
        timeout=600,
    )
    return {_canonical(item["metadata"]["name"]) for item in json.loads(report.read_text())["install"]}


@pytest.mark.slow
def test_the_edge_extra_pulls_no_server_framework_or_database_driver(tmp_path: Path) -> None:
    names = _resolve("edge", tmp_path)
    # The resolution is real: the agent's own dependencies are there ...
    assert {"tagledger", "sllurp", "aiomqtt", "paho-mqtt", "pydantic"} <= names
    # ... and nothing of the gateway's or the API's stack.
    assert not names & SERVER_OR_DATABASE, sorted(names & SERVER_OR_DATABASE)
