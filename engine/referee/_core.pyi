"""Type stubs for the compiled core, ``referee._core`` (checked against the binary by stubtest).

Everything Rust hands Python is one of the frozen classes below (or a plain tuple of numbers
and strings); the only JSON that crosses goes from Python to Rust: the rules, a suggestion,
a band artifact. The ``*Dict`` TypedDicts exist only here (``@type_check_only``: import them
under ``TYPE_CHECKING``): they describe what each class's ``to_dict()`` returns, JSON-native values
only, a number that is not finite given as None.
"""

from collections.abc import Callable
from typing import TypedDict, final, type_check_only

__all__ = [
    "BandInfo",
    "BaselineEvidence",
    "BaselineInfo",
    "BodyTooLargeError",
    "DecodeError",
    "HostEvidence",
    "IngestReport",
    "RuleCompileError",
    "RuleOutcome",
    "RuleSet",
    "SeriesStore",
    "SeriesSummary",
    "SignalEvidence",
    "StoreStats",
    "SuggestionEvent",
    "__version__",
]

__version__: str

@type_check_only
class SuggestionEventDict(TypedDict):
    body: str
    attributes: dict[str, str]
    resource: dict[str, str]
    time_unix_nano: int

@final
class SuggestionEvent:
    """A ``copilot.suggestion`` log record."""

    @property
    def body(self) -> str:
        """The record's body as text: a string body as it is (the suggestion as JSON), any
        other value as JSON (a key-value map becomes a JSON object)."""
    @property
    def attributes(self) -> dict[str, str]:
        """The record's attributes that have string values (others are left out)."""
    @property
    def resource(self) -> dict[str, str]:
        """The emitting resource's attributes that have string values (others are left out)."""
    @property
    def time_unix_nano(self) -> int:
        """The record's time, else its observed time; 0 without either."""
    def to_dict(self) -> SuggestionEventDict: ...

@final
class IngestReport:
    """What one OTLP export request did to the store."""

    @property
    def accepted(self) -> int:
        """Points (metrics), records (logs) or spans (traces) taken in; a suggestion event
        counts once decoded (the caller may still reject it)."""
    @property
    def rejected(self) -> int: ...
    @property
    def message(self) -> str:
        """Empty on full success; otherwise what was wrong with the first rejected item."""
    @property
    def suggestions(self) -> list[SuggestionEvent]:
        """The ``copilot.suggestion`` events of a logs request (empty for metrics and traces)."""

@type_check_only
class StoreStatsDict(TypedDict):
    series: int
    max_series: int
    points_accepted: int
    points_rejected: int
    series_rejected: int
    out_of_order: int
    duplicates: int
    open_event_buckets: int
    late_events: int
    refused_events: int

@final
class StoreStats:
    """Store-wide counters (and the log/span roll-up's)."""

    @property
    def series(self) -> int: ...
    @property
    def max_series(self) -> int: ...
    @property
    def points_accepted(self) -> int: ...
    @property
    def points_rejected(self) -> int: ...
    @property
    def series_rejected(self) -> int:
        """New series refused because the store was full."""
    @property
    def out_of_order(self) -> int: ...
    @property
    def duplicates(self) -> int: ...
    @property
    def open_event_buckets(self) -> int:
        """One-minute log and span buckets not written yet."""
    @property
    def late_events(self) -> int:
        """Log records and spans for a minute already written (dropped)."""
    @property
    def refused_events(self) -> int:
        """Log records and spans refused because their series could not be created."""
    def to_dict(self) -> StoreStatsDict:
        """The counters, in the order above (``GET /api/v1/series``'s ``stats``)."""

@type_check_only
class SeriesSummaryDict(TypedDict):
    attributes: dict[str, str]
    duplicates: int
    last_expected: float | None
    last_ts_ms: int | None
    last_value: float | None
    metric: str
    out_of_order: int
    points: int
    recent_score: float | None
    statistic: str

@final
class SeriesSummary:
    """One live series."""

    @property
    def metric(self) -> str: ...
    @property
    def statistic(self) -> str: ...
    @property
    def attributes(self) -> dict[str, str]:
        """The series' attributes, sorted by key."""
    @property
    def points(self) -> int:
        """Points the streaming baseline has learned."""
    @property
    def last_ts_ms(self) -> int | None: ...
    @property
    def last_value(self) -> float | None: ...
    @property
    def last_expected(self) -> float | None:
        """The newest point's expected value, when it had a band."""
    @property
    def recent_score(self) -> float | None:
        """The lowest band score (normal mass within |z|) of the last three points: a
        sustained deviation, not a blip. None with fewer than three points."""
    @property
    def out_of_order(self) -> int: ...
    @property
    def duplicates(self) -> int: ...
    def to_dict(self) -> SeriesSummaryDict:
        """As ``GET /api/v1/series`` lists it (keys in alphabetical order)."""

@type_check_only
class BandInfoDict(TypedDict):
    anchor_ms: int
    backtest_mae: float
    end_ms: int
    fitted_at_ms: int
    model: str
    step_ms: int
    streaming_mae: float
    valid_until_ms: int
    version: int

@final
class BandInfo:
    """A fitted band artifact as a series holds it (its grid left out)."""

    @property
    def anchor_ms(self) -> int: ...
    @property
    def backtest_mae(self) -> float: ...
    @property
    def end_ms(self) -> int:
        """Where the artifact's grid ends (anchor + steps x step)."""
    @property
    def fitted_at_ms(self) -> int: ...
    @property
    def model(self) -> str: ...
    @property
    def step_ms(self) -> int: ...
    @property
    def streaming_mae(self) -> float: ...
    @property
    def valid_until_ms(self) -> int: ...
    @property
    def version(self) -> int: ...
    def to_dict(self) -> BandInfoDict: ...

@type_check_only
class BaselineInfoDict(TypedDict):
    artifact: BandInfoDict | None
    duplicates: int
    first_ts_ms: int | None
    gaps: int
    last_ts_ms: int | None
    model: str | None
    out_of_order: int
    p50: float | None
    p90: float | None
    p99: float | None
    resets: int
    samples: int

@final
class BaselineInfo:
    """One series' baseline (see docs/baselines.md)."""

    @property
    def artifact(self) -> BandInfo | None:
        """The fitted band the series holds, if any."""
    @property
    def duplicates(self) -> int: ...
    @property
    def first_ts_ms(self) -> int | None: ...
    @property
    def gaps(self) -> int:
        """Gaps longer than ``gap_s``."""
    @property
    def last_ts_ms(self) -> int | None: ...
    @property
    def model(self) -> str | None:
        """The baseline that judged the newest point (None before it had a band)."""
    @property
    def out_of_order(self) -> int: ...
    @property
    def p50(self) -> float | None:
        """Quantiles of the learned values (None before any, or when not kept)."""
    @property
    def p90(self) -> float | None: ...
    @property
    def p99(self) -> float | None: ...
    @property
    def resets(self) -> int:
        """Gaps longer than ``gap_reset_s``, after which the baseline started over."""
    @property
    def samples(self) -> int: ...
    def to_dict(self) -> BaselineInfoDict: ...

@type_check_only
class SignalEvidenceDict(TypedDict):
    metric: str
    statistic: str
    series: dict[str, str]
    window_s: float | None
    samples: int
    observed: float | None
    mean: float | None
    max: float | None
    min: float | None
    last: float | None
    start_ms: int
    end_ms: int

@final
class SignalEvidence:
    """The signal a rule read (``signal`` in CEL): the series it resolved to and the window's
    numbers, NaN where undefined (``to_dict`` gives None for those)."""

    @property
    def metric(self) -> str: ...
    @property
    def statistic(self) -> str: ...
    @property
    def series(self) -> dict[str, str]:
        """The attributes of the series read."""
    @property
    def window_s(self) -> float: ...
    @property
    def samples(self) -> int: ...
    @property
    def observed(self) -> float:
        """The window's value by the rule's ``agg`` (mean by default)."""
    @property
    def mean(self) -> float: ...
    @property
    def max(self) -> float: ...
    @property
    def min(self) -> float: ...
    @property
    def last(self) -> float: ...
    @property
    def start_ms(self) -> int: ...
    @property
    def end_ms(self) -> int: ...
    def to_dict(self) -> SignalEvidenceDict:
        """The fields in the order above (a verdict trace's ``signal``)."""

@type_check_only
class BaselineEvidenceDict(TypedDict):
    model: str
    freshness_s: float | None
    history: int
    ready: bool
    expected: float | None
    sigma: float | None
    lower: float | None
    upper: float | None
    z: float | None
    score: float | None
    raw_score: float | None
    max_point_score: float | None
    max_raw_score: float | None
    max_z: float | None
    min_z: float | None
    mean_abs_z: float | None
    mean_z: float | None
    median_z: float | None
    prior_points: int
    prior_abs_z_p50: float | None
    prior_abs_z_p90: float | None
    prior_abs_z_p99: float | None
    prior_abs_z_p995: float | None
    prior_windows: int
    p_up: float | None
    p_down: float | None
    p_value: float | None
    level_p_up: float | None
    level_p_down: float | None
    ratio: float | None
    p50: float | None
    p90: float | None
    p99: float | None

@final
class BaselineEvidence:
    """The baseline a rule compared its signal with (``baseline`` in CEL; the fields are
    described in docs/rules.md), NaN where undefined (``to_dict`` gives None for those)."""

    @property
    def model(self) -> str: ...
    @property
    def freshness_s(self) -> float: ...
    @property
    def history(self) -> int: ...
    @property
    def ready(self) -> bool: ...
    @property
    def expected(self) -> float: ...
    @property
    def sigma(self) -> float: ...
    @property
    def lower(self) -> float: ...
    @property
    def upper(self) -> float: ...
    @property
    def z(self) -> float: ...
    @property
    def score(self) -> float: ...
    @property
    def raw_score(self) -> float: ...
    @property
    def max_point_score(self) -> float: ...
    @property
    def max_raw_score(self) -> float: ...
    @property
    def max_z(self) -> float: ...
    @property
    def min_z(self) -> float: ...
    @property
    def mean_abs_z(self) -> float: ...
    @property
    def mean_z(self) -> float: ...
    @property
    def median_z(self) -> float: ...
    @property
    def prior_points(self) -> int: ...
    @property
    def prior_abs_z_p50(self) -> float: ...
    @property
    def prior_abs_z_p90(self) -> float: ...
    @property
    def prior_abs_z_p99(self) -> float: ...
    @property
    def prior_abs_z_p995(self) -> float: ...
    @property
    def prior_windows(self) -> int:
        """Earlier windows in the ring the p-values rank the window against."""
    @property
    def p_up(self) -> float:
        """Conformal p-value of the window's highest z against the series' earlier windows."""
    @property
    def p_down(self) -> float:
        """Conformal p-value of the window's lowest z against the series' earlier windows."""
    @property
    def p_value(self) -> float:
        """Two-sided: ``min(1, 2 * min(p_up, p_down))``."""
    @property
    def level_p_up(self) -> float:
        """Share of the ring's earlier values at least as high as the window's highest."""
    @property
    def level_p_down(self) -> float:
        """Share of the ring's earlier values at least as low as the window's lowest."""
    @property
    def ratio(self) -> float: ...
    @property
    def p50(self) -> float: ...
    @property
    def p90(self) -> float: ...
    @property
    def p99(self) -> float: ...
    def to_dict(self) -> BaselineEvidenceDict:
        """The fields in the order above (a verdict trace's ``baseline``)."""

@final
class RuleOutcome:
    """What one rule made of one suggestion."""

    @property
    def id(self) -> str: ...
    @property
    def matched(self) -> bool: ...
    @property
    def when(self) -> bool | None:
        """The ``when`` condition's value, when it was evaluated."""
    @property
    def missing(self) -> str | None:
        """Why the evidence was missing (the rule can then only be inconclusive)."""
    @property
    def error(self) -> str | None:
        """What failed to evaluate (``match``, ``when``)."""
    @property
    def signal(self) -> SignalEvidence | None: ...
    @property
    def baseline(self) -> BaselineEvidence | None: ...
    @property
    def host(self) -> HostEvidence | None:
        """The claimed metric among its subject's metrics, when the rule's ``when`` reads ``host``."""

@type_check_only
class HostEvidenceDict(TypedDict):
    metrics: int
    anomalous: int
    alpha: float | None
    rank: int
    p: float | None
    q: float | None
    min_q: float | None
    anomalous_metrics: list[str]

@final
class HostEvidence:
    """The claimed metric among its subject's metrics (``host`` in CEL; docs/rules.md)."""

    @property
    def metrics(self) -> int:
        """The subject's metrics whose evidence could be read over the window."""
    @property
    def anomalous(self) -> int:
        """How many of them have a Benjamini-Hochberg q-value at most ``alpha``."""
    @property
    def alpha(self) -> float:
        """The false-discovery rate ``anomalous`` counts at (0.05)."""
    @property
    def rank(self) -> int:
        """The claimed metric's rank by p-value (1 = most anomalous; 0 when unread)."""
    @property
    def p(self) -> float:
        """The claimed metric's two-sided p-value (``baseline.p_value``)."""
    @property
    def q(self) -> float:
        """The claimed metric's Benjamini-Hochberg q-value among the subject's metrics."""
    @property
    def min_q(self) -> float:
        """The smallest q-value among the subject's metrics."""
    @property
    def anomalous_metrics(self) -> list[str]:
        """The anomalous metrics, most anomalous first (at most 10)."""
    def to_dict(self) -> HostEvidenceDict:
        """The fields in the order above (a verdict trace's ``host``)."""

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
    ) -> IngestReport:
        """Decodes an OTLP metrics export request and updates the store (the report counts points)."""
    def ingest_otlp_logs(
        self, body: bytes, *, json: bool = False, gzip: bool = False, max_body_bytes: int = 67108864
    ) -> IngestReport:
        """Decodes an OTLP logs export request: ``copilot.suggestion`` events come back in the
        report's ``suggestions``; other records are counted (the report counts records)."""
    def ingest_otlp_traces(
        self, body: bytes, *, json: bool = False, gzip: bool = False, max_body_bytes: int = 67108864
    ) -> IngestReport:
        """Decodes an OTLP traces export request; server spans feed RED series (the report
        counts spans)."""
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
    def series(self, metric: str | None = None, limit: int = 1000) -> list[SeriesSummary]:
        """Summaries of the live series (of ``metric``, when given), at most ``limit``."""
    def samples(
        self, metric: str, statistic: str, attributes: dict[str, str]
    ) -> list[tuple[int, float, float, float, float, float]]:
        """Recent samples of one series: (ts_ms, value, expected, lower, upper, score)."""
    def busy(self) -> bool:
        """True while another thread holds the store (an ingest, a flush, a fit)."""
    def stats(self) -> StoreStats:
        """Store-wide counters."""
    def set_band(self, metric: str, statistic: str, attributes: dict[str, str], artifact_json: str) -> None:
        """Hands a fitted band artifact (JSON; its shape is ``referee.state.seasonal.BandArtifactSpec``)
        to one series; ValueError names the refused field."""
    def take_touched(self) -> list[tuple[str, str, dict[str, str]]]:
        """Series read by rules since the last call."""
    def baseline_info(self, metric: str, statistic: str, attributes: dict[str, str]) -> BaselineInfo | None:
        """One series' baseline (counters, quantiles, the fitted band); None without that series."""
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
    def evaluate(self, store: SeriesStore, suggestion_json: str, at_ms: int) -> list[RuleOutcome]:
        """Evaluates every rule against the suggestion (JSON); returns, in rule order, the
        outcomes of the rules that matched or failed to evaluate. A rule missing from the list
        did not match."""
    def __len__(self) -> int: ...
