"""Ingest: OTLP bodies into the Rust series store, one call per request."""
