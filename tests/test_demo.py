"""`tagledger demo --duration N --json`, run as a user runs it: a subprocess, no services."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import close_enough

pytestmark = pytest.mark.slow


def test_demo_summary_matches_the_simulated_store() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tagledger.app.cli", "demo", "--duration", "30", "--json", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "API at http://127.0.0.1:" in done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["reads"] > summary["observations"] > 0
    truth = {z: n for z, n in summary["truth_items_by_zone"].items() if n}
    assert sum(truth.values()) >= 350
    assert close_enough(summary["items_by_zone"], truth), (summary["items_by_zone"], truth)
    # The availability sample, as the API returned it, agrees with the ledger's zones.
    assert len(summary["availability"]) == 3
    for a in summary["availability"]:
        assert sum(a["on_hand_by_zone"].values()) == a["on_hand"]
        assert a["available_to_sell"] <= a["on_hand"]
        assert abs(a["on_hand"] - summary["truth_by_gtin"][a["gtin"]]) <= 2
    # On stop it says where the ledger was, and that it is gone.
    said = re.search(r"stopped; the ledger was (\S+), now deleted \(give --data-dir to keep it\)", done.stderr)
    assert said is not None, done.stderr[-2000:]
    assert said.group(1).endswith("ledger.sqlite")
    assert not Path(said.group(1)).exists()
    # The run and its shutdown logged no error and no crash.
    assert "Traceback" not in done.stderr
    assert " ERROR " not in done.stderr
    # Nor any warning: a new user's first run should not look like trouble.
    warnings = [line for line in done.stderr.splitlines() if " WARNING " in line]
    assert not warnings, warnings[:5]


def test_demo_stopped_with_ctrl_c_says_where_its_kept_ledger_is(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    demo = subprocess.Popen(
        [sys.executable, "-m", "tagledger.app.cli", "demo", "--port", "0", "--data-dir", str(data_dir)],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert demo.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = demo.stderr.readline()
        lines.append(line)
        if "running until Ctrl-C" in line:
            break
    demo.send_signal(signal.SIGINT)
    rest = demo.stderr.read()
    assert demo.wait(30) == 0, "".join(lines) + rest
    ledger = data_dir / "ledger.sqlite"
    assert f"stopped; the ledger stays in {ledger}" in rest
    assert ledger.exists()
