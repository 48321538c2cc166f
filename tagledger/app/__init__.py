"""The composition root and the tools: the `tagledger` CLI, the embedded stack, demo, simulator, benchmarks."""
