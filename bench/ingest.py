"""Ingest benchmark: ``tagledger bench ingest --json`` (code in ``tagledger.app.benchmarks.ingest``).

.venv/bin/python bench/ingest.py --json
"""

from __future__ import annotations

from tagledger.app.benchmarks.ingest import main

if __name__ == "__main__":
    raise SystemExit(main())
