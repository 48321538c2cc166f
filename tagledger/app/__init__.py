"""The composition root and the tools: everything that imports the roles to put them together.

Nothing below this package (the roles, the ledger, the foundation) imports it.

* ``cli``: the ``tagledger`` command, one subcommand per role (the console script's entry point);
  ``cli_settings`` (the role options, generated from the settings models), ``cli_common``
  (stopping with a message, importing a role), ``cli_help`` (help and version), ``cli_audit``,
  ``cli_keys``, ``cli_mqtt``, ``cli_bench`` (subcommand groups);
* ``stack``: one store's whole pipeline in one process (simulator, agents, gateway, API);
* ``demo``: ``tagledger demo``, the stack with an embedded MQTT broker and a throw-away ledger;
  ``demo_settings`` (its settings, from which its options are generated, without the broker);
* ``audit_follow``: a count session fed from the store's live reads;
* ``mqtt_provision``, ``mqtt_tls``: broker users, ACL and certificates from the site file;
* ``faults``: a TCP forwarder that can be cut, a broker one can kill (tests and benchmarks);
* ``sim/``: the simulated store and its LLRP reader endpoints (``tagledger simulate``):
  ``world``/``store``/``story``/``rf`` (what happens and what is read), ``endpoint`` +
  ``llrp_codec`` + ``llrp_requests`` (the reader side of LLRP), ``scenarios``/``layouts``
  (the accuracy scenarios), ``runner`` (the command);
* ``benchmarks/``: ``tagledger bench <name>``, each a module with ``main(argv) -> int`` and the
  options of ``benchmarks.args`` (``--json``, a variable per option).
"""
