"""Measure this checkout and others in one run (``--compare DIR``): each run its own process, in turn.

Used by ``bench api-cpu`` and ``bench ingest-cpu``. Each run is the bench's own file
started as a script with ``--tree DIR``: it imports the measured packages from ``DIR``
(another checkout, e.g. a ``git worktree`` of an older commit), not from this
interpreter's editable install. Standard library only: a bench in script mode loads this
file by its path before it imports anything of the package (see :func:`use_tree`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from typing import Any


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--compare", action="append", default=[], help="another checkout to measure in the same run")
    parser.add_argument("--pairs", type=int, default=3, help="with --compare: runs of each checkout, taken in turn")
    parser.add_argument("--tree", default=None, help=argparse.SUPPRESS)  # script mode: measure this checkout


def use_tree(tree: str) -> None:
    """Import the packages from ``tree``, not from this interpreter's (editable) install."""
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in getattr(f, "__module__", "")]
    sys.path.insert(0, tree)


def in_turn(
    script: str, passed: Sequence[str], trees: Sequence[str | None], pairs: int
) -> dict[str, list[dict[str, Any]]]:
    """Run ``script`` ``pairs`` times per tree (None: this checkout), the trees in turn; results per tree.

    Each run prints one JSON object, its last line, with the ``tree`` it measured.
    """
    runs: dict[str, list[dict[str, Any]]] = {}
    for _ in range(pairs):
        for tree in trees:
            cmd = [sys.executable, script, *passed, *(["--tree", tree] if tree else [])]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True, env=os.environ.copy())  # noqa: S603
            result = json.loads(done.stdout.strip().splitlines()[-1])
            runs.setdefault(result.pop("tree"), []).append(result)
    return runs
