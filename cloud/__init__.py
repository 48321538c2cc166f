"""The channel API: what e-commerce, staff dashboards and auditors ask the ledger.

A role: it imports the ledger and the foundation, never the gateway, the edge or ``tagledger.app``.

Layout (one package per domain, fixed file roles):

* ``app``: the app factory :func:`cloud.app.create_app` and its typed lifespan state;
* ``server``: :func:`cloud.server.run`, serving the app with uvicorn;
* ``settings``: :class:`cloud.settings.ApiSettings` (every field an environment variable);
* ``errors``: the API's error root and the one handler that maps errors to HTTP;
* ``<domain>/endpoints.py`` (routes, thin), ``service.py`` (talks to the ledger),
  ``schemas.py`` (response and request models); ``availability/rules.py`` holds the
  availability arithmetic, free of I/O.
"""
