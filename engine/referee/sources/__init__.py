"""Helpers for suggestion-source plugins (the plugins themselves live in ``plugins/``)."""
