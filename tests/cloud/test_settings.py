from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from cloud.settings import ApiSettings
from tagledger.site import EXAMPLE_SITE


def test_every_field_is_an_environment_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TAGLEDGER_API_DATABASE_URL", "postgresql://u@db/ledger")
    monkeypatch.setenv("TAGLEDGER_API_SITE", str(tmp_path / "site.yaml"))
    monkeypatch.setenv("TAGLEDGER_API_PORT", "9000")
    monkeypatch.setenv("TAGLEDGER_API_CORS_ORIGINS", '["https://shop.example"]')
    monkeypatch.setenv("TAGLEDGER_API_SAFETY_STOCK_BY_CATEGORY", '{"shoes": 2}')
    monkeypatch.setenv("TAGLEDGER_API_DEFAULT_SAFETY_STOCK", "1")
    s = ApiSettings()
    assert s.database_url == "postgresql://u@db/ledger"
    assert s.site == tmp_path / "site.yaml"
    assert s.port == 9000
    assert s.cors_origins == ["https://shop.example"]
    assert s.safety_stock_by_category == {"shoes": 2}
    assert s.default_safety_stock == 1


def test_defaults_serve_the_bundled_example_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "SITE", "HOST", "PORT", "CORS_ORIGINS"):
        monkeypatch.delenv(f"TAGLEDGER_API_{name}", raising=False)
    s = ApiSettings()
    assert (s.host, s.site, s.cors_origins) == ("127.0.0.1", EXAMPLE_SITE, [])


def test_negative_safety_stock_is_refused() -> None:
    with pytest.raises(ValidationError):
        ApiSettings(default_safety_stock=-1)
    with pytest.raises(ValidationError):
        ApiSettings(safety_stock_by_category={"shoes": -2})
