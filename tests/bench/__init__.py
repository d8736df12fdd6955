"""`make bench` (`python -m tests.bench`): throughput, latency and memory of the
whole system (PostgreSQL, nats-server, sandbox provider, service, dispatcher as
separate processes), each figure next to a ceiling measured in the same run.

Phase sizes scale with BENCH_SCALE (0.1 for a quick smoke run); see config.py.
Results go to BENCH_OUT (default bench-results.json)."""
