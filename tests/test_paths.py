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


async def test_a_new_ledger_and_spool_are_owner_only(tmp_path: Path) -> None:
    # Issue 11: the SQLite ledger (webhook secrets, key digests) and the state directory were
    # created with the umask's modes (0644 / 0755 typically): readable by every local user.
    import os
    import stat

    from edge.spool import Spool
    from tagledger.ledger.migrate import migrate

    old = os.umask(0o022)
    try:
        ledger = tmp_path / "state" / "tagledger" / "tagledger.sqlite"
        await migrate(f"sqlite:///{ledger}")
        spool_path = tmp_path / "edge-state" / "spool" / "r1.sqlite"
        async with Spool.open(spool_path, store_id="s1", reader_id="r1"):
            pass
    finally:
        os.umask(old)
    for directory in (ledger.parent, spool_path.parent):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    for file in [ledger, spool_path, *ledger.parent.glob("*.sqlite-*"), *spool_path.parent.glob("*.sqlite-*")]:
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
    # An existing directory the operator chose keeps its mode.
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    await migrate(f"sqlite:///{shared / 'ledger.sqlite'}")
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755
    assert stat.S_IMODE((shared / "ledger.sqlite").stat().st_mode) == 0o600
