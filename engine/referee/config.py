"""Service settings: defaults, then ``referee.yaml``, then ``REFEREE_*`` environment variables.

Every setting is listed in ``docs/configuration.md``. Secrets (the Grafana token) are read
from the environment or a file and never appear in ``repr``, logs or errors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from referee.durations import seconds

PACKAGE_DIR = Path(__file__).resolve().parent


def default_rules_dir(package_dir: Path = PACKAGE_DIR) -> Path:
    """The default rule packs: the repository's ``rules/`` for an editable install (the package
    sits in ``<repo>/engine/referee``), else the copy shipped in a wheel as ``referee/_rules``.

    ``engine/referee/_rules`` holds one symlink per pack in ``rules/``; maturin writes a
    symlinked file's contents into the wheel (``tests/test_packaging.py``)."""
    repo_rules = package_dir.parent.parent / "rules"
    if package_dir.parent.name == "engine" and repo_rules.is_dir():
        return repo_rules
    if (package_dir / "_rules").is_dir():
        return package_dir / "_rules"
    raise FileNotFoundError("default rule packs not found; pass --rules PATH or set REFEREE_RULES")


class Secret:
    """A string that does not print itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass
class GrafanaTarget:
    """Where a service's annotations go: a dashboard (and optionally one panel)."""

    dashboard_uid: str | None = None
    panel_id: int | None = None


@dataclass
class OtelConfig:
    """``otel:`` in referee.yaml. Unset fields fall back to the standard ``OTEL_*`` variables,
    read by the OpenTelemetry SDK itself, so the usual environment works unchanged."""

    endpoint: str | None = None
    #: ``http/protobuf`` or ``grpc``.
    protocol: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    export_interval_s: float | None = None

    def __post_init__(self) -> None:
        if self.protocol is not None and self.protocol not in ("http/protobuf", "grpc"):
            raise ValueError(f"otel.protocol: expected http/protobuf or grpc, got {self.protocol!r}")
        self.headers = {str(k): str(v) for k, v in (self.headers or {}).items()}
        if self.export_interval_s is not None:
            self.export_interval_s = float(self.export_interval_s)


@dataclass
class FeedbackConfig:
    """``feedback:`` in referee.yaml: where verdicts are POSTed back to the copilot."""

    url: str
    token: Secret | None = field(default=None, repr=False)
    token_file: Path | None = None
    timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if not isinstance(self.url, str) or not self.url.startswith(("http://", "https://")):
            raise ValueError(f"feedback.url: expected an http(s) URL, got {self.url!r}")
        if self.token is not None and not isinstance(self.token, Secret):
            self.token = Secret(str(self.token))
        if self.token is None and self.token_file is not None:
            self.token_file = Path(self.token_file)
            self.token = Secret(self.token_file.read_text(encoding="utf-8").strip())
        self.timeout_s = float(self.timeout_s)


@dataclass
class LifecycleConfig:
    """``lifecycle:`` in referee.yaml: how pending verdicts are re-evaluated and when they settle
    (see ``referee.verdicts.lifecycle``)."""

    #: How often pending verdicts are decided again (seconds, or ``30s``).
    reevaluate_s: float = 30.0
    #: How long after its first decision a pending verdict settles (``15m``, or seconds).
    settle_after: float = 900.0

    def __post_init__(self) -> None:
        self.reevaluate_s = seconds(self.reevaluate_s, "lifecycle.reevaluate_s")
        self.settle_after = seconds(self.settle_after, "lifecycle.settle_after")
        if self.reevaluate_s <= 0:
            raise ValueError("lifecycle.reevaluate_s: must be greater than 0")
        if self.settle_after < 0:
            raise ValueError("lifecycle.settle_after: must not be negative")


@dataclass
class BaselinesConfig:
    """``baselines:`` in referee.yaml: the seasonal fits (see ``referee.state.seasonal``)."""

    #: Seconds of CPU spent on statsmodels fits per minute; 0 turns the fits off.
    fit_budget_s_per_min: float = 6.0
    #: How often a touched series is refitted.
    refit_every: float = 3600.0
    #: Bucket width of the fitted history (must divide a day).
    fit_step: float = 300.0
    #: How far ahead a fitted band is valid.
    horizon: float = 6 * 3600.0

    def __post_init__(self) -> None:
        self.fit_budget_s_per_min = float(self.fit_budget_s_per_min)
        self.refit_every = seconds(self.refit_every, "baselines.refit_every")
        self.fit_step = seconds(self.fit_step, "baselines.fit_step")
        self.horizon = seconds(self.horizon, "baselines.horizon")
        if self.fit_budget_s_per_min < 0:
            raise ValueError("baselines.fit_budget_s_per_min: must not be negative")
        if self.fit_step <= 0 or 86400 % int(self.fit_step) or self.fit_step != int(self.fit_step):
            raise ValueError("baselines.fit_step: must be a whole number of seconds dividing a day")
        if self.horizon < self.fit_step:
            raise ValueError("baselines.horizon: must be at least one fit_step")


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 4318
    #: SQLite file, or a ``postgresql://`` URL shared by several replicas.
    database: Path | str = Path("referee.db")
    rules: list[Path] = field(default_factory=list)
    max_body_bytes: int = 64 << 20
    #: OTLP/gRPC port on ``host``; ``off`` (None) turns the gRPC receiver off, 0 picks a free port.
    grpc_port: int | None = 4317
    #: Bearer tokens accepted on every route but /healthz and /readyz (several, for rotation);
    #: empty means no authentication. ``REFEREE_AUTH_TOKENS`` is comma-separated;
    #: ``REFEREE_AUTH_TOKENS_FILE`` holds one token per line.
    auth_tokens: list[Secret] = field(default_factory=list, repr=False)
    #: OTLP export requests being decoded or waiting at once; more are answered 503 + Retry-After.
    max_inflight_requests: int = 32
    #: Body bytes of those requests together; more are answered 503 + Retry-After.
    max_inflight_bytes: int = 256 << 20
    max_series: int = 100_000
    ring_capacity: int = 512
    #: Points a series needs before its baseline may suppress anything.
    min_history: int = 30
    #: Days the hour-of-day slots around a point's time must have seen before the seasonal band is used.
    season_min_days: int = 3
    band_k: float = 3.0
    #: Seconds between checks of the rule files for changes (reload on change); 0 turns it off.
    rules_watch_interval_s: float = 1.0
    #: Seconds between passes of the watch rules over live series; 0 turns them off.
    watch_interval_s: float = 30.0
    #: Base URL used in links back to verdicts (annotations, feedback).
    public_url: str | None = None
    grafana_url: str | None = None
    grafana_token: Secret | None = field(default=None, repr=False)
    grafana_timeout_s: float = 5.0
    #: service.name -> dashboard/panel; services not listed get organisation-wide annotations.
    grafana_dashboards: dict[str, GrafanaTarget] = field(default_factory=dict)
    #: OpenTelemetry export; off unless this or an ``OTEL_EXPORTER_OTLP_*ENDPOINT`` is set.
    otel: OtelConfig | None = None
    #: Feedback webhook back to the copilot; off unless set.
    feedback: FeedbackConfig | None = None
    #: Pending verdicts: re-evaluation period and settle time.
    lifecycle: LifecycleConfig = field(default_factory=LifecycleConfig)
    #: Seasonal fits: CPU budget, refit period, bucket width, horizon.
    baselines: BaselinesConfig = field(default_factory=BaselinesConfig)
    #: Per-source settings for suggestion-source plugins, e.g. ``sources.alertmanager``; each
    #: plugin validates its own section.
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.rules:
            self.rules = [default_rules_dir()]

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @classmethod
    def load(cls, path: Path | None = None, env: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults < ``path`` (or ``REFEREE_CONFIG``, or ``./referee.yaml`` if present) < env < overrides."""
        env = dict(os.environ if env is None else env)
        values: dict[str, Any] = {}
        if path is None and env.get("REFEREE_CONFIG"):
            path = Path(env["REFEREE_CONFIG"])
        if path is None and Path("referee.yaml").is_file():
            path = Path("referee.yaml")
        if path is not None:
            with path.open(encoding="utf-8") as fh:
                loaded = yaml.safe_load(fh) or {}
            if not isinstance(loaded, dict):
                raise ValueError(f"{path}: expected a mapping of settings")
            values.update(loaded)
        names = {f.name for f in fields(cls)}
        for name in names:
            key = f"REFEREE_{name.upper()}"
            if key in env:
                values[name] = env[key]
        # The Grafana plugin's conventional variables.
        if env.get("GRAFANA_URL"):
            values["grafana_url"] = env["GRAFANA_URL"]
        token = env.get("GRAFANA_TOKEN")
        if not token and env.get("GRAFANA_TOKEN_FILE"):
            token = Path(env["GRAFANA_TOKEN_FILE"]).read_text(encoding="utf-8").strip()
        if token:
            values["grafana_token"] = token
        if env.get("REFEREE_AUTH_TOKENS_FILE"):
            text = Path(env["REFEREE_AUTH_TOKENS_FILE"]).read_text(encoding="utf-8")
            values["auth_tokens"] = [t.strip() for t in text.splitlines() if t.strip()]
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(values) - names
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
        return cls(**_coerce(values))


def _coerce(values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    if "auth_tokens" in out:
        raw = out["auth_tokens"]
        if isinstance(raw, str):
            raw = [t.strip() for t in raw.split(",") if t.strip()]
        out["auth_tokens"] = [t if isinstance(t, Secret) else Secret(str(t)) for t in raw or []]
    if "grpc_port" in out:
        raw = out["grpc_port"]
        # YAML 1.1 reads a bare `off` as false.
        off = raw is None or raw is False
        off = off or (isinstance(raw, str) and raw.strip().lower() in ("", "off", "none", "false"))
        out["grpc_port"] = None if off else int(raw)
    for name in ("max_inflight_requests", "max_inflight_bytes"):
        if name in out:
            out[name] = int(out[name])
    for name in ("port", "max_body_bytes", "max_series", "ring_capacity", "min_history", "season_min_days"):
        if name in out:
            out[name] = int(out[name])
    for name in ("band_k", "grafana_timeout_s", "rules_watch_interval_s", "watch_interval_s"):
        if name in out:
            out[name] = float(out[name])
    if "database" in out:
        db = str(out["database"])
        # A PostgreSQL URL stays a string (Path would fold its "//").
        out["database"] = db if db.startswith(("postgresql://", "postgres://")) else Path(db)
    # Sections read into their dataclasses: a mapping (or YAML text from the environment).
    # `otel` and `feedback` may be null (off); an empty `lifecycle` or `baselines` keeps the defaults.
    sections: tuple[tuple[str, type, bool], ...] = (
        ("otel", OtelConfig, True),
        ("feedback", FeedbackConfig, True),
        ("lifecycle", LifecycleConfig, False),
        ("baselines", BaselinesConfig, False),
    )
    for name, cls, nullable in sections:
        if name not in out:
            continue
        raw = out[name]
        if isinstance(raw, str):
            raw = yaml.safe_load(raw)
        if raw is None and not nullable:
            del out[name]
            continue
        if raw is not None and not isinstance(raw, cls):
            if not isinstance(raw, dict):
                raise ValueError(f"{name}: expected a mapping")
            unknown = set(raw) - {f.name for f in fields(cls)}
            if unknown:
                raise ValueError(f"{name}: unknown keys {', '.join(sorted(unknown))}")
            try:
                raw = cls(**raw)
            except TypeError as e:
                raise ValueError(f"{name}: {e}") from None
        out[name] = raw
    if "sources" in out:
        raw = out["sources"]
        raw = yaml.safe_load(raw) if isinstance(raw, str) else raw
        if not isinstance(raw, dict) or not all(isinstance(v, dict | None) for v in raw.values()):
            raise ValueError("sources: expected a mapping of source name to its settings")
        out["sources"] = {str(k): dict(v or {}) for k, v in raw.items()}
    if "rules" in out:
        rules = out["rules"]
        if isinstance(rules, str):
            rules = [r for r in rules.split(os.pathsep) if r]
        out["rules"] = [Path(r) for r in rules]
    if "grafana_token" in out and not isinstance(out["grafana_token"], Secret):
        out["grafana_token"] = Secret(str(out["grafana_token"]))
    if "grafana_dashboards" in out:
        raw = out["grafana_dashboards"]
        if isinstance(raw, str):
            raw = yaml.safe_load(raw) or {}
        out["grafana_dashboards"] = {
            str(k): v if isinstance(v, GrafanaTarget) else GrafanaTarget(**(v or {})) for k, v in raw.items()
        }
    return out
