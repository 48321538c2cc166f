"""The demo's embedded MQTT broker (amqtt) under clients that connect while others subscribe.

amqtt 0.12.1 walks its subscriptions table with awaits inside the loop; a subscription
made meanwhile used to drop the connecting client with ``RuntimeError: dictionary
changed size during iteration`` (CI saw it in the demo when an agent reconnected).
This drives that interleaving against the real broker: retained messages make the
walk yield, four clients subscribe in a loop while others connect.
"""

from __future__ import annotations

import asyncio
import logging

import aiomqtt
import pytest

from tagledger.app.demo import SnapshotIterDict, embedded_broker


def test_snapshot_iteration_survives_changes_made_during_it() -> None:
    table = SnapshotIterDict({"a": 1, "b": 2})
    seen = []
    for key in table:
        seen.append(key)
        table[key + "x"] = 0
        table.pop("b", None)
    assert seen == ["a", "b"]
    for key, _ in table.items():
        del table[key]
    assert table == {}


async def test_clients_connect_while_others_subscribe(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    connected = 0

    async with embedded_broker() as url:
        host, port = url.removeprefix("mqtt://").rsplit(":", 1)
        stop = asyncio.Event()

        async def subscriber(i: int) -> None:
            n = 0
            while not stop.is_set():
                async with aiomqtt.Client(host, int(port), identifier=f"sub-{i}-{n}") as client:
                    for t in range(20):
                        await client.publish(f"race/{i}/{n}/{t}", b"x", retain=True)
                        await client.subscribe(f"race/{i}/{n}/{t}")
                n += 1

        async def connector() -> None:
            nonlocal connected
            try:
                for k in range(40):
                    async with aiomqtt.Client(host, int(port), identifier=f"conn-{k}"):
                        connected += 1
                        await asyncio.sleep(0.05)
            finally:
                stop.set()

        await asyncio.wait_for(asyncio.gather(connector(), *(subscriber(i) for i in range(4))), timeout=60)

    assert connected == 40
    races = [r for r in caplog.records if r.exc_info and "changed size during iteration" in str(r.exc_info[1])]
    assert not races, races[0].exc_info
