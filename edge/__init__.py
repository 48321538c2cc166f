"""The edge agent: one RFID reader over LLRP -> aggregated, spooled batches -> MQTT.

Runs on small store hardware: it imports the foundation (``tagledger.wire``, ``site``,
``clock``, ``paths``, ``mqtt``) and no server, database or simulator code.

* ``agent``: the agent's main loop (reads -> windows -> spool -> publisher), status, heartbeats;
* ``llrp``: the reader connection through sllurp (the only module that imports it, GPL);
  ``llrp_config`` (the ROSpec and reader settings), ``llrp_reports`` (tag reports to
  reads), ``llrp_threads`` (sllurp's blocking calls on daemon threads, sockets shut down
  before they are closed);
* ``reads``: what the reader connection hands over; ``profile`` + ``profiles/``: reader
  configuration per zone role;
* ``aggregate``: one observation per EPC × antenna × window (pure);
* ``spool``: store-and-forward on local disk until the gateway acks;
* ``publisher``: the MQTT side (batches out, acks in, the status topic);
* ``health``: read rates, gaps, the reader's clock offset;
* ``settings``: :class:`edge.settings.EdgeSettings` (``TAGLEDGER_EDGE_*``).
"""
