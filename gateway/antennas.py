"""Per-antenna health rows from agents' heartbeats and statuses (table ``antenna_health``).

Pure: turns wire messages into ``(sql, args)`` steps that the ingestor runs with
``LedgerWriter.execute_all`` after the batch commit of the same group.  Health is
best-effort telemetry: a heartbeat lost to a crash is replaced by the next one
(every few seconds), so it takes no part in the exactly-once path.

Newer wins per column group: a heartbeat older than the stored one, or a status
older than the stored one, changes nothing (MQTT redelivery and retained
messages may bring an old one after a new one).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tagledger.site import Reader
from tagledger.wire import Heartbeat, ReaderStatus

Step = tuple[str, Sequence[Any]]

_HEARTBEAT = """INSERT INTO antenna_health (reader_id, port, store_id, reads_per_s, heartbeat_us, down)
VALUES ($1, $2, $3, $4, $5, 0)
ON CONFLICT (reader_id, port) DO UPDATE SET store_id = excluded.store_id, reads_per_s = excluded.reads_per_s,
  heartbeat_us = excluded.heartbeat_us
WHERE antenna_health.heartbeat_us IS NULL OR antenna_health.heartbeat_us <= excluded.heartbeat_us"""

_STATUS = """INSERT INTO antenna_health (reader_id, port, store_id, reads_per_s, down, status_us)
VALUES ($1, $2, $3, 0, $4, $5)
ON CONFLICT (reader_id, port) DO UPDATE SET store_id = excluded.store_id, down = excluded.down,
  status_us = excluded.status_us
WHERE antenna_health.status_us IS NULL OR antenna_health.status_us <= excluded.status_us"""


def heartbeat_steps(heartbeat: Heartbeat) -> list[Step]:
    """One row per antenna port the heartbeat reports a rate for (ports that are not numbers are skipped)."""
    steps: list[Step] = []
    for port, rate in sorted(heartbeat.reads_per_s.items()):
        if port.isdigit():
            steps.append((_HEARTBEAT, (heartbeat.reader_id, int(port), heartbeat.store_id, rate, heartbeat.at_us)))
    return steps


def status_steps(status: ReaderStatus, reader: Reader | None) -> list[Step]:
    """Every antenna of the reader (as the site lists them, plus any reported down) marked down or up."""
    down = set(status.antennas_down)
    ports = sorted({a.port for a in reader.antennas} | down) if reader is not None else sorted(down)
    return [
        (_STATUS, (status.reader_id, port, status.store_id, 1 if port in down else 0, status.at_us)) for port in ports
    ]
