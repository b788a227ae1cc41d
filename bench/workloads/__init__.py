"""Workload generators of the speed benchmarks, built before any timing starts: the OTLP
metrics payloads every ingest benchmark sends (``otlp``) and the 50-rule pack, history and
suggestions of the decision benchmark (``decision``)."""
