"""Benchmarks that print figures (throughput, latency, memory); ``python -m bench`` runs
them all. They are not tests: they report, they do not judge."""
