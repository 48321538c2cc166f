"""Message sources of ``tagledger bench faults``: an agent that re-sends, a reader that does not, poison and fuzz.

Each publishes through its own paho client on its own thread (:class:`Publisher`), as separate
devices would, so a broker restart is seen by each as by a real one.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from tagledger.wire import Topics

STORE = "paris-01"
READER = "paris-01-r1"


class Publisher:
    """A paho client on its own thread: reconnects by itself, resubscribes on connect."""

    def __init__(self, port: int, subscriptions: list[str], on_message: Callable[[str, bytes], None]) -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{uuid.uuid4().hex[:10]}")
        self.client.reconnect_delay_set(1, 1)
        self._subs = subscriptions
        self._on = on_message
        self.client.on_connect = self._connected
        self.client.on_message = lambda _c, _u, m: self._on(m.topic, bytes(m.payload))
        self.client.connect_async("127.0.0.1", port, keepalive=5)
        self.client.loop_start()

    def _connected(self, client: paho.Client, *_args: Any) -> None:
        for s in self._subs:
            client.subscribe(s, qos=1)

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class Agent:
    """What an edge agent does for delivery: keep each batch until its ack, re-send the unacknowledged."""

    def __init__(self, topics: Topics, port: int, boot: str, epc_base: int, resend_s: float) -> None:
        self.topics = topics
        self.boot = boot
        self.epc_base = epc_base
        self.resend_s = resend_s
        self.pending: dict[int, tuple[bytes, float]] = {}
        self.done: dict[int, str] = {}
        self.ack_times: list[float] = []  # monotonic time of each 'committed' ack
        self.epcs: list[str] = []
        self._lock = threading.Lock()
        self._seq = 0
        self.published = 0  # every publish, re-sends included
        self.pub = Publisher(port, [topics.ack(STORE, READER)], self._ack)

    def _publish(self, payload: bytes) -> None:
        self.published += 1
        self.pub.publish(self.topics.reads(STORE, READER), payload)

    def _ack(self, _topic: str, payload: bytes) -> None:
        doc = json.loads(payload)
        if doc.get("boot_id") != self.boot:
            return
        seq, result = doc["seq"], doc["result"]
        with self._lock:
            if result == "resend":
                if seq in self.pending:
                    self._publish(self.pending[seq][0])
                return
            if self.pending.pop(seq, None) is not None:
                self.done[seq] = result
                if result == "committed":
                    self.ack_times.append(time.monotonic())

    def send(self) -> None:
        seq = self._seq
        self._seq += 1
        epc = f"30340BB8C0{self.epc_base + seq:014X}"
        now = int(time.time() * 1e6)
        doc = {
            "v": 1, "kind": "reads", "store_id": STORE, "reader_id": READER, "boot_id": self.boot, "seq": seq,
            "sent_at_us": now,
            "observations": [{"epc": epc, "antenna": 1, "first_seen_us": now - 500_000, "last_seen_us": now,
                              "count": 3, "peak_rssi": -50.0, "mean_rssi": -52.0}],
        }  # fmt: skip
        payload = json.dumps(doc).encode()
        with self._lock:
            self.pending[seq] = (payload, time.monotonic())
            self.epcs.append(epc)
            self._publish(payload)

    def resend_due(self) -> None:
        now = time.monotonic()
        with self._lock:
            due = [(seq, p) for seq, (p, at) in self.pending.items() if now - at >= self.resend_s]
            for seq, p in due:
                self.pending[seq] = (p, now)
            for _seq, p in due:
                self._publish(p)

    @property
    def sent(self) -> int:
        return self._seq


class Reader:
    """A reader publishing Impinj and Zebra events itself, one new EPC per message, never re-sent.

    Each read is strong (-35 dBm): one such read admits a tag (``Policy.admit_strong_dbm``).
    """

    def __init__(self, topics: Topics, port: int, epc_base: int) -> None:
        self.topics = topics
        self.epc_base = epc_base
        self.epcs: list[str] = []
        self.pub = Publisher(port, [], lambda _t, _p: None)

    def send(self) -> None:
        epc = f"30340BB8C0{self.epc_base + len(self.epcs):014X}"
        self.epcs.append(epc)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
        if len(self.epcs) % 2:
            event: dict[str, Any] = {"epcHex": epc, "antennaPort": 1, "peakRssiCdbm": -3500}
            payload = json.dumps({"timestamp": stamp, "tagInventoryEvent": event}).encode()
            self.pub.publish(self.topics.impinj(STORE, READER), payload)
        else:
            data = {"idHex": epc, "antenna": 1, "peakRssi": -35, "reads": 2}
            self.pub.publish(self.topics.zebra(STORE, READER), json.dumps({"timestamp": stamp, "data": data}).encode())


def poison(topics: Topics, n: int, marker: str) -> tuple[str, bytes]:
    """The n-th poison payload: the kinds the reliability probe found, each unique (the marker leads)."""
    tag = f"{marker}-{n}"
    far = 2**63 - 1
    kinds: list[tuple[str, Any]] = [
        (topics.reads(STORE, READER), b'{"n":"' + tag.encode() + b'","a":' + b'{"a":' * 2000),
        (topics.impinj(STORE, READER), {"n": tag, "timestamp": "2026-01-01T00:00:00+00:00",
                                        "tagInventoryEvent": {"epcHex": "30340BB8C0000000000000AA",
                                                              "antennaPort": 1, "peakRssiCdbm": 1_000_000}}),
        (topics.zebra(STORE, READER), b'{"n":"' + tag.encode() + b'","timestamp":"2026-01-01T00:00:00+00:00",'
         b'"data":{"idHex":"30340BB8C0000000000000AB","antenna":1,"peakRssi":-50,"reads":1' + b"0" * 400 + b"}}"),
        (topics.status(STORE, READER), {"n": tag, "v": 1, "kind": "status", "store_id": STORE, "reader_id": READER,
                                        "state": "online", "at_us": far}),
        (topics.pos(STORE), {"n": tag, "v": 1, "kind": "pos", "store_id": STORE, "transaction_id": tag,
                             "at_us": far, "lines": [{"epc": "30340BB8C0000000000000AC"}]}),
        (topics.reads(STORE, READER), {"n": tag, "v": 1, "kind": "reads", "store_id": STORE, "reader_id": READER,
                                       "boot_id": f"poison-{tag}", "seq": 2**63, "sent_at_us": 1,
                                       "observations": []}),
        (topics.status(STORE, READER), {"n": tag, "v": 1, "kind": "status", "store_id": STORE, "reader_id": READER,
                                        "state": "online", "at_us": int(time.time() * 1e6), "detail": "a\x00b"}),
    ]  # fmt: skip
    topic, body = kinds[n % len(kinds)]
    return topic, body if isinstance(body, bytes) else json.dumps(body).encode()


def mutate(rng: random.Random, doc: Any) -> Any:
    """One field of ``doc`` (anywhere in it) replaced by an edge value: the probe's fuzzing, seeded."""
    paths: list[tuple[Any, ...]] = []

    def walk(node: Any, prefix: tuple[Any, ...]) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node[:2]) if isinstance(node, list) else ()
        for k, v in items:
            paths.append((*prefix, k))
            walk(v, (*prefix, k))

    walk(doc, ())
    doc = json.loads(json.dumps(doc))
    path = rng.choice(paths)
    target = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = rng.choice(
        [0, -1, 2**31, 2**63, -(2**63), 10**400, 1e308, -1e308, math.inf, -math.inf, math.nan, "", "x" * 70,
         None, True, [], {}, [1, 2], {"a": 1}, "2026-01-01T00:00:00", "30340BB8C0000000000000ZZ", rng.random()]
    )  # fmt: skip
    return doc


def fuzz_payload(rng: random.Random, topics: Topics, n: int) -> tuple[str, bytes]:
    """A fuzzed read batch, Impinj or Zebra payload: a valid one with one to three fields spoiled, or raw bytes."""
    now = int(time.time() * 1e6)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    kind = n % 3
    if kind == 0:
        topic = topics.reads(STORE, READER)
        doc: Any = {"v": 1, "kind": "reads", "store_id": STORE, "reader_id": READER, "boot_id": f"fuzz-{n % 7}",
                    "seq": rng.randrange(0, 50), "sent_at_us": now,
                    "observations": [{"epc": f"30340BB8C0{rng.randrange(2**40):014X}", "antenna": 1,
                                      "first_seen_us": now - 1000, "last_seen_us": now, "count": 2,
                                      "peak_rssi": -50.0, "mean_rssi": -51.0}]}  # fmt: skip
    elif kind == 1:
        topic = topics.impinj(STORE, READER)
        doc = {"timestamp": stamp, "tagInventoryEvent": {"epcHex": f"30340BB8C0{rng.randrange(2**40):014X}",
                                                        "antennaPort": 1, "peakRssiCdbm": -3500}}  # fmt: skip
    else:
        topic = topics.zebra(STORE, READER)
        doc = {"timestamp": stamp, "data": {"idHex": f"30340BB8C0{rng.randrange(2**40):014X}", "antenna": 1,
                                            "peakRssi": -35, "reads": 2}}  # fmt: skip
    roll = rng.random()
    if roll < 0.1:
        return topic, rng.randbytes(rng.randrange(0, 40))
    if roll < 0.15:
        return topic, b'{"a":' * rng.randrange(100, 3000)
    for _ in range(rng.randrange(1, 4)):
        doc = mutate(rng, doc)
    return topic, json.dumps(doc).encode()
