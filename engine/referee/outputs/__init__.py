"""Outputs: the verdict store, its delivery outbox, and the sinks plugins provide."""
