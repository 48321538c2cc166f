"""The foundation (tagledger's own modules below the roles) imports on the core install alone.

The core install has pydantic, pydantic-settings, PyYAML and typer; the MQTT client, the
database drivers and the web stack come with the role extras. A subprocess hides them
(``sys.modules[name] = None`` makes ``import name`` fail) and imports each foundation module.
"""

from __future__ import annotations

import subprocess
import sys

FOUNDATION = [
    "tagledger.wire",
    "tagledger.site",
    "tagledger.clock",
    "tagledger.paths",
    "tagledger.redact",
    "tagledger.mqtt",
    "tagledger.backoff",
]
EXTRAS = [
    "aiomqtt",
    "paho",
    "sqlalchemy",
    "asyncpg",
    "aiosqlite",
    "fastapi",
    "uvicorn",
    "sllurp",
    "amqtt",
    "msgspec",
    "epcpy",
    "httpx",
    "prometheus_client",
    "alembic",
]


def _import_without_extras(modules: list[str]) -> subprocess.CompletedProcess[str]:
    code = "\n".join(
        [
            "import sys",
            *(f"sys.modules[{name!r}] = None" for name in EXTRAS),
            *(f"import {module}" for module in modules),
            "from tagledger.mqtt import BrokerAddress",
            "print(BrokerAddress.parse('mqtts://u:p@broker.example').port)",
        ]
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60)


def test_foundation_modules_import_without_the_role_extras() -> None:
    done = _import_without_extras(FOUNDATION)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "8883"


def test_the_check_notices_a_module_that_needs_an_extra() -> None:
    done = _import_without_extras(["gateway.service"])
    assert done.returncode != 0
    assert "ModuleNotFoundError" in done.stderr or "ImportError" in done.stderr


def test_the_cli_and_its_role_settings_import_without_the_role_extras() -> None:
    """``tagledger --help`` on any install: the options come from the roles' settings models."""
    done = _import_without_extras(["tagledger.app.cli", "edge.settings", "gateway.settings", "cloud.settings"])
    assert done.returncode == 0, done.stderr
