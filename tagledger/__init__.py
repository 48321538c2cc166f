"""tagledger's foundation, and (in ``tagledger.app``) the composition root above every role.

Layers, top to bottom (checked by the ``layers`` contract in pyproject.toml; a module imports
only from layers below its own)::

    tagledger.app                      CLI, embedded stack, demo, simulator, benchmarks, tools
    edge | gateway | cloud             the three roles, independent of each other
    tagledger.ledger | tagledger.mqtt  the stock ledger (backends, migrations); broker URLs and sessions
    tagledger.site | .paths | .redact  the site file; data directories; passwords out of URLs
    tagledger.wire | tagledger.clock   the MQTT wire contract; time as injected clocks

Module map of this package:

* ``wire``: topics and payload models of the MQTT contract (pydantic only);
* ``site``: the site file (stores, zones, readers, antennas, products) and ``examples/site.yaml``;
* ``clock``: :class:`~tagledger.clock.Clock`, the system clock and the manual one tests drive;
* ``paths``: where each role keeps its data by default, private directories (standard library);
* ``redact``: a URL without its password, for logs and errors;
* ``mqtt``: broker URLs, reconnect back-off, aiomqtt session arguments (aiomqtt imported on use);
* ``ledger/``: the append-only item ledger, its SQLite and PostgreSQL backends and migrations;
* ``app/``: everything that wires the roles together (see :mod:`tagledger.app`).
"""
