"""Benchmarks behind ``tagledger bench <name>``: each module has ``main(argv) -> int``.

They live in the package (not only under bench/) so that an installed tagledger
can measure itself.  A benchmark prints figures (with ``--json``, one JSON object
as its last line) and asserts nothing about time.
"""
