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

PACKAGE_DIR = Path(__file__).resolve().parent


def default_rules_dir() -> Path:
    """The default rule packs: shipped inside the package when installed from a wheel, or the
    repository's ``rules/`` for an editable install."""
    for candidate in (PACKAGE_DIR / "_rules", PACKAGE_DIR.parent.parent / "rules"):
        if candidate.is_dir():
            return candidate
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
class Settings:
    host: str = "127.0.0.1"
    port: int = 4318
    database: Path = Path("referee.db")
    rules: list[Path] = field(default_factory=list)
    max_body_bytes: int = 64 << 20
    max_series: int = 100_000
    ring_capacity: int = 512
    #: Points a series needs before its baseline may suppress anything.
    min_history: int = 30
    #: Days the hour-of-day slots around a point's time must have seen before the seasonal band is used.
    season_min_days: int = 3
    band_k: float = 3.0
    #: Base URL used in links back to verdicts (annotations, feedback).
    public_url: str | None = None
    grafana_url: str | None = None
    grafana_token: Secret | None = field(default=None, repr=False)
    grafana_timeout_s: float = 5.0
    #: service.name -> dashboard/panel; services not listed get organisation-wide annotations.
    grafana_dashboards: dict[str, GrafanaTarget] = field(default_factory=dict)

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
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(values) - names
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
        return cls(**_coerce(values))


def _coerce(values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    for name in ("port", "max_body_bytes", "max_series", "ring_capacity", "min_history", "season_min_days"):
        if name in out:
            out[name] = int(out[name])
    for name in ("band_k", "grafana_timeout_s"):
        if name in out:
            out[name] = float(out[name])
    if "database" in out:
        out["database"] = Path(out["database"])
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
