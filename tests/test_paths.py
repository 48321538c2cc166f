"""Default file locations: systemd's state directory, else XDG, never the working directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from tagledger.ledger.urls import parse
from tagledger.paths import default_ledger_url, default_spool_path, state_dir


def test_systemd_state_directory_comes_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/tagledger-edge:/var/lib/other")
    monkeypatch.setenv("XDG_STATE_HOME", "/xdg")
    assert state_dir() == Path("/var/lib/tagledger-edge")
    assert default_spool_path("r1") == Path("/var/lib/tagledger-edge/spool/r1.sqlite")


def test_xdg_then_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert state_dir() == tmp_path / "tagledger"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/ignored")  # the XDG spec: relative paths are invalid
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert state_dir() == tmp_path / "home" / ".local" / "state" / "tagledger"


def test_the_default_ledger_is_an_absolute_sqlite_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    parsed = parse(default_ledger_url())
    assert parsed.backend == "sqlite"
    assert Path(parsed.target) == tmp_path / "tagledger" / "tagledger.sqlite"


async def test_migrating_a_first_sqlite_ledger_creates_its_directory(tmp_path: Path) -> None:
    from tagledger.ledger.migrate import migrate

    target = tmp_path / "state" / "tagledger" / "tagledger.sqlite"
    await migrate(f"sqlite:///{target}")
    assert target.is_file()
