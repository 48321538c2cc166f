"""Passwords never reach messages: broker and ledger URLs in errors, reprs and settings errors."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pydantic import ValidationError

from cloud.settings import ApiSettings
from edge.settings import EdgeSettings
from gateway.settings import GatewaySettings
from tagledger.mqtt import BrokerAddress
from tagledger.redact import redact_url

SECRET = "s3cr3t-pw"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"mqtt://gw:{SECRET}@broker:1883", "mqtt://gw:***@broker:1883"),
        (f"postgresql://app:{SECRET}@db/ledger?sslmode=require", "postgresql://app:***@db/ledger?sslmode=require"),
        (f"https://u:{SECRET}@hooks.example/x", "https://u:***@hooks.example/x"),
        ("mqtt://broker:1883", "mqtt://broker:1883"),
        ("mqtt://user@broker", "mqtt://user@broker"),
        (f"gw:{SECRET}@broker:1883", "gw:***@broker:1883"),
    ],
)
def test_redact_url_hides_the_password_only(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    "url",
    [
        f"mqtt://gw:{SECRET}@broker:notaport",
        f"ftp://gw:{SECRET}@broker",
        f"mqtt://gw:{SECRET}@",
        f"mqtt://gw:{SECRET}@[::1",
    ],
)
def test_a_bad_mqtt_url_is_refused_without_its_password(url: str) -> None:
    # Issue 11: the MQTT URL's password was in the ValueError (and so in logs and tracebacks).
    with pytest.raises(ValueError, match="MQTT URL") as caught:
        BrokerAddress.parse(url)
    assert SECRET not in str(caught.value)


def test_a_broker_address_repr_has_no_password() -> None:
    address = BrokerAddress.parse(f"mqtt://gw:{SECRET}@broker")
    assert address.password == SECRET
    assert SECRET not in repr(address)


@pytest.mark.parametrize(
    "make",
    [
        lambda: GatewaySettings(mqtt_url=[f"mqtt://gw:{SECRET}@broker"]),
        lambda: ApiSettings(database_url=[f"postgresql://app:{SECRET}@db/ledger"]),
        lambda: EdgeSettings(mqtt_url=[f"mqtt://gw:{SECRET}@broker"]),
    ],
)
def test_settings_errors_do_not_echo_the_refused_value(make: Callable[[], object]) -> None:
    with pytest.raises(ValidationError) as caught:
        make()
    assert "mqtt_url" in str(caught.value) or "database_url" in str(caught.value)
    assert SECRET not in str(caught.value)
