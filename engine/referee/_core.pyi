"""Type stubs for the compiled core, ``referee._core`` (checked against the binary by stubtest)."""

from collections.abc import Callable
from typing import final

__all__ = ["BodyTooLargeError", "DecodeError", "RuleCompileError", "RuleSet", "SeriesStore", "__version__"]

__version__: str

class DecodeError(ValueError):
    """An OTLP body that cannot be decoded (HTTP 400)."""

class BodyTooLargeError(ValueError):
    """An OTLP body over the size limit after decompression (HTTP 413)."""

class RuleCompileError(ValueError):
    """Rule conditions that failed to compile; ``errors`` lists (rule, field, line, column, message)."""

    errors: list[tuple[str, str, int, int, str]]

@final
class SeriesStore:
    """Every live series with its recent points and streaming baseline."""

    def __new__(
        cls,
        max_series: int = 100000,
        ring_capacity: int = 512,
        min_samples: int = 30,
        season_min_days: int = 3,
        band_k: float = 3.0,
    ) -> SeriesStore: ...
    def ingest_otlp_metrics(
        self, body: bytes, *, json: bool = False, gzip: bool = False, max_body_bytes: int = 67108864
    ) -> tuple[int, int, str]:
        """Decodes an OTLP metrics export request and updates the store.
        Returns (accepted points, rejected points, message)."""
    def ingest_otlp_logs(
        self, body: bytes, *, json: bool = False, gzip: bool = False, max_body_bytes: int = 67108864
    ) -> tuple[int, int, str, str]:
        """Decodes an OTLP logs export request. `copilot.suggestion` events come back as a JSON
        array of {body, attributes, resource, time_unix_nano}; other records are counted.
        Returns (accepted records, rejected records, message, suggestions JSON)."""
    def ingest_otlp_traces(
        self, body: bytes, *, json: bool = False, gzip: bool = False, max_body_bytes: int = 67108864
    ) -> tuple[int, int, str]:
        """Decodes an OTLP traces export request; server spans feed RED series.
        Returns (accepted spans, rejected spans, message)."""
    def flush_events(self, now_ms: int) -> int:
        """Writes the one-minute log and span buckets that ended at or before `now_ms`."""
    def ingest_points(
        self,
        metric: str,
        statistic: str,
        attributes: dict[str, str],
        timestamps_ms: list[int],
        values: list[float],
    ) -> int:
        """Adds points to one series; returns how many were accepted."""
    def series_json(self, metric: str | None = None, limit: int = 1000) -> str:
        """Series summaries as a JSON list."""
    def samples(
        self, metric: str, statistic: str, attributes: dict[str, str]
    ) -> list[tuple[int, float, float, float, float, float]]:
        """Recent samples of one series: (ts_ms, value, expected, lower, upper, score)."""
    def busy(self) -> bool:
        """True while another thread holds the store (an ingest, a flush, a fit)."""
    def stats(self) -> dict[str, int]:
        """Store-wide counters."""
    def set_band(self, metric: str, statistic: str, attributes: dict[str, str], artifact_json: str) -> None:
        """Hands a fitted band artifact to one series; ValueError names the refused field."""
    def take_touched(self) -> list[tuple[str, str, dict[str, str]]]:
        """Series read by rules since the last call."""
    def baseline_info(self, metric: str, statistic: str, attributes: dict[str, str]) -> str | None:
        """One series' baseline as JSON: counters, quantiles, the fitted band."""
    def __len__(self) -> int: ...

@final
class RuleSet:
    """A compiled rule set."""

    def __new__(
        cls, rules_json: str, source: str = "", functions: dict[str, Callable[..., object]] | None = None
    ) -> RuleSet:
        """Compiles rules; ``functions`` become callable from conditions (values cross as plain
        bool/int/float/str/None/list/dict)."""
    @property
    def revision(self) -> str: ...
    def evaluate(self, store: SeriesStore, suggestion_json: str, at_ms: int) -> str:
        """Evaluates every rule; returns as JSON, in rule order, the outcomes of the rules that
        matched or failed to evaluate (``{id, matched, when?, missing?, error?, signal?,
        baseline?}``; a field without a value is left out). A rule missing from the list did
        not match."""
    def __len__(self) -> int: ...
