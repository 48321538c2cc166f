from __future__ import annotations

from pathlib import Path

import aiomqtt
import pytest
from pydantic import ValidationError

from gateway.settings import GatewaySettings
from tagledger.mqtt import SESSION_EXPIRY_S, persistent_session


def test_the_gateway_speaks_mqtt5_and_sets_its_own_in_flight_window() -> None:
    s = GatewaySettings(site=Path("site.yaml"))
    assert (s.mqtt_protocol, s.mqtt_receive_maximum) == ("5", 1000)
    kwargs = persistent_session(s.mqtt_protocol, receive_maximum=s.mqtt_receive_maximum)
    assert kwargs["protocol"] is aiomqtt.ProtocolVersion.V5
    assert kwargs["clean_start"] is False
    assert kwargs["properties"].ReceiveMaximum == 1000
    assert kwargs["properties"].SessionExpiryInterval == SESSION_EXPIRY_S


def test_mqtt311_keeps_a_persistent_session_the_broker_windows() -> None:
    kwargs = persistent_session("3.1.1", receive_maximum=1000)
    assert kwargs == {"protocol": aiomqtt.ProtocolVersion.V311, "clean_session": False}


def test_held_messages_must_fit_in_the_window() -> None:
    with pytest.raises(ValidationError, match=r"reorder_max_held \(1000\) must be below mqtt_receive_maximum"):
        GatewaySettings(site=Path("site.yaml"), reorder_max_held=1000)
    # Under 3.1.1 the window is the broker's to set: nothing to compare with here.
    v311 = GatewaySettings(site=Path("site.yaml"), mqtt_protocol="3.1.1", reorder_max_held=1000)
    assert v311.reorder_max_held == 1000


def test_an_unknown_protocol_names_the_field() -> None:
    with pytest.raises(ValidationError, match="mqtt_protocol"):
        GatewaySettings(site=Path("site.yaml"), mqtt_protocol="4")  # type: ignore[arg-type]
