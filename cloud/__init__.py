"""The channel API: what e-commerce, staff dashboards and auditors ask the ledger.

A role: it imports the ledger and the foundation, never the gateway, the edge or ``tagledger.app``.

Layout (one package per domain, fixed file roles):

* ``app``: the app factory :func:`cloud.app.create_app` and its typed lifespan state;
* ``server``: :func:`cloud.server.run`, serving the app with uvicorn;
* ``settings``: :class:`cloud.settings.ApiSettings` (every field an environment variable);
* ``errors``: the API's error root and the one handler that maps errors to HTTP;
* ``<domain>/endpoints.py`` (routes, thin), ``service.py`` (the domain's logic),
  ``repository.py`` (its tables' SQL, one text per query for both backends:
  ``reservations`` holds, ``auth`` API keys, ``webhooks`` subscriptions and deliveries,
  ``audit`` counts, book stock and the audit log, ``changes`` the event stream's reads),
  ``schemas.py`` (response and request models); ``rules.py`` holds a domain's pure
  logic, free of I/O (``availability``: the availability arithmetic; ``reservations``:
  the holds and what may happen to them).

The tables of these repositories belong to the API (marked so in ``tagledger.ledger.schema``,
migrated by the one Alembic chain); the ledger core neither reads nor writes them.
"""
