"""Deprecated: moved to :mod:`referee.ingest.alerts` (alerts are one way suggestions come in).

``referee.sources.alerts`` still imports, with a ``DeprecationWarning``, until the next release.
"""
