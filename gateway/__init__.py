"""The gateway: MQTT reads in, the item state machine, exactly-once ledger writes out.

* ``service``: the process, composing ``session`` (MQTT in and out), ``grouping`` (commit
  groups, drain on shutdown) and ``lease_loop`` (sharing stores, via ``leases``);
  ``health`` (/healthz, /readyz, /metrics), ``metrics``, ``logs``;
* ``ingest``: from MQTT messages to ledger writes, routed by topic; ``ordering`` (read batches:
  ``dedup``, ``reorder``, vetting, the state machine), ``commit`` (ledger retries, dead letters),
  ``work`` (what passes between them); ``fastwire`` (hot-path decoding), ``formats`` (reader
  payloads -> sightings), ``vetting`` (bounds), ``records`` (``Sighting``, ``HealthEvent``,
  ``FormatError``, column bounds);
* the state machine, pure with an injected clock: ``state`` (one store), ``item``, ``policy``,
  ``admission``, ``zones``, ``arbitration``, ``rivals`` (two zones of one role, fitting rooms:
  reads at rest), ``dark`` (items carried into a dark zone), ``presence``, ``timers``,
  ``deadlines``, ``pos``, ``anomalies`` (with ``anomaly_watch``, its wiring into ``state``), ``epc``;
* health of the store's reading: ``reader_health``, ``zone_health``, ``antennas``, ``read_rates``;
* ``settings``: :class:`gateway.settings.GatewaySettings`.
"""
