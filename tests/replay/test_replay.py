"""``referee replay``: CSV and OTLP/JSON inputs, NAB's irregular files, suggestions decided with
only the data up to their created_at, and byte-identical outputs across runs."""

from __future__ import annotations

import csv
import gzip
import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from referee.cli import app
from referee.config import Settings
from referee.replay import ReplayError, parse_timestamp, replay

DATA = Path(__file__).parent / "data" / "nab"
RULES = Path(__file__).resolve().parents[2] / "rules"
ANOMALY_PACK = """\
referee: 1
pack: test-anomaly
rules:
  - id: test.anomaly.band
    match: suggestion.claim.kind == "anomaly"
    signal:
      metric: value
      window: 30m
    when: signal.max > baseline.upper || signal.min < baseline.lower
    then: {verdict: confirm, reason: outside the band}
    otherwise: {verdict: suppress, reason: inside the band}
"""


def _unzip(name: str, tmp: Path) -> Path:
    out = tmp / f"{name}.csv"
    out.write_bytes(gzip.decompress((DATA / f"{name}.csv.gz").read_bytes()))
    return out


def _settings(tmp: Path, rules: Path | None = None) -> Settings:
    return Settings.load(None, env={}, rules=[rules or RULES], database=tmp / "unused.db")


def _scores(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize(
    ("name", "irregular"),
    [
        ("ec2_request_latency_system_failure", True),  # 11 duplicate timestamps
        ("machine_temperature_system_failure", True),  # one step backwards
        ("ambient_temperature_system_failure", False),  # gaps of up to 7 days
        ("exchange-2_cpc_results", True),  # ~21 h gaps, one repeated timestamp
    ],
)
def test_irregular_nab_files(tmp_path: Path, name: str, irregular: bool) -> None:
    src = _unzip(name, tmp_path)
    rows = src.read_text().splitlines()[1:]
    # What the store must count: a repeat of the latest timestamp is a duplicate, anything
    # earlier is out of order.
    duplicates = backwards = 0
    latest = ""
    for row in rows:
        ts = row.split(",")[0]
        duplicates += ts == latest
        backwards += ts < latest
        latest = max(latest, ts)
    assert (duplicates + backwards > 0) == irregular
    result = replay([src], tmp_path / "out", _settings(tmp_path))
    scores = _scores(tmp_path / "out" / "scores" / f"{name}.csv")
    assert list(scores[0]) == ["timestamp", "value", "expected", "lower", "upper", "score"]
    stamps = [parse_timestamp(r["timestamp"]) for r in scores]
    assert all(a < b for a, b in itertools.pairwise(stamps)), "scores must be in time order"
    assert len(scores) == result.stats["points_accepted"]
    assert result.stats["points_accepted"] + result.stats["points_rejected"] == len(rows)
    assert result.stats["duplicates"] == duplicates
    assert result.stats["out_of_order"] == backwards
    # Causal scores in [0, 1]; the first points have no band yet.
    assert scores[0]["expected"] == ""
    assert all(0.0 <= float(r["score"]) <= 1.0 for r in scores)
    assert sum(r["expected"] != "" for r in scores) > 0.9 * len(scores)


def _suggestion(i: int, at: datetime, service: str) -> str:
    return json.dumps(
        {
            "id": f"s{i}",
            "source": "test",
            "created_at": at.isoformat(),
            "subject": {"service.name": service},
            "claim": {"kind": "anomaly", "signal": "value", "direction": "up"},
        }
    )


def _series_with_spike(tmp: Path) -> tuple[Path, datetime, datetime]:
    """A quiet series with a spike: returns the file, a time before and a time in the spike."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    path = tmp / "web.csv"
    lines = ["timestamp,value"]
    for i in range(600):
        v = 10.0 + (i % 5) * 0.1 + (50.0 if 400 <= i < 406 else 0.0)
        lines.append(f"{(start + timedelta(minutes=5 * i)).strftime('%Y-%m-%d %H:%M:%S')},{v}")
    path.write_text("\n".join(lines) + "\n")
    return path, start + timedelta(minutes=5 * 390), start + timedelta(minutes=5 * 403)


def test_suggestions_are_decided_with_data_up_to_created_at(tmp_path: Path) -> None:
    pack = tmp_path / "anomaly.yaml"
    pack.write_text(ANOMALY_PACK)
    series, before, during = _series_with_spike(tmp_path)
    sugg = tmp_path / "s.jsonl"
    # Written out of order: replay sorts by created_at.
    sugg.write_text(_suggestion(2, during, "web") + "\n" + _suggestion(1, before, "web") + "\n")
    result = replay([series], tmp_path / "out", _settings(tmp_path, pack), sugg)
    by_id = {v.suggestion_id: v for v in result.verdicts}
    assert [v.suggestion_id for v in result.verdicts] == ["s1", "s2"]
    assert by_id["s1"].verdict == "suppress", by_id["s1"].explanation
    assert by_id["s2"].verdict == "confirm", by_id["s2"].explanation
    assert by_id["s1"].evidence.window_end is not None and by_id["s1"].evidence.window_end <= before
    assert by_id["s2"].decided_at == during
    lines = (tmp_path / "out" / "verdicts.jsonl").read_text().splitlines()
    assert [json.loads(x)["suggestion_id"] for x in lines] == ["s1", "s2"]


def test_replay_is_deterministic(tmp_path: Path) -> None:
    pack = tmp_path / "anomaly.yaml"
    pack.write_text(ANOMALY_PACK)
    series, before, _ = _series_with_spike(tmp_path)
    nab = _unzip("ec2_request_latency_system_failure", tmp_path)
    sugg = tmp_path / "s.jsonl"
    sugg.write_text(
        "\n".join(_suggestion(i, before + timedelta(minutes=7 * i), "web") for i in range(20)) + "\n"
    )
    outs = []
    for run in ("a", "b"):
        out = tmp_path / run
        res = CliRunner().invoke(
            app,
            [
                "replay",
                str(series),
                str(nab),
                "--out",
                str(out),
                "--suggestions",
                str(sugg),
                "--rules",
                str(pack),
            ],
        )
        assert res.exit_code == 0, res.output
        outs.append(out)
    files_a = sorted(p.relative_to(outs[0]) for p in outs[0].rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(outs[1]) for p in outs[1].rglob("*") if p.is_file())
    assert files_a == files_b
    assert (
        Path("scores/web.csv") in files_a and Path("scores/ec2_request_latency_system_failure.csv") in files_a
    )
    for rel in files_a:
        assert (outs[0] / rel).read_bytes() == (outs[1] / rel).read_bytes(), rel
    assert len((outs[0] / "verdicts.jsonl").read_text().splitlines()) == 20


def test_metric_and_attribute_columns_and_rfc3339(tmp_path: Path) -> None:
    path = tmp_path / "multi.csv"
    path.write_text(
        "timestamp,value,metric,service.name\n"
        "2024-01-01T00:00:00Z,1,cpu,api\n"
        "2024-01-01T00:01:00+00:00,2,cpu,api\n"
        "2024-01-01T00:00:00Z,5,cpu,db\n"
    )
    result = replay([path], tmp_path / "out", _settings(tmp_path))
    assert sorted(len(rows) for rows in result.series.values()) == [1, 2]
    assert result.stats["series"] == 2


def test_attribute_option_and_metric_default(tmp_path: Path) -> None:
    series, _, _ = _series_with_spike(tmp_path)
    res = CliRunner().invoke(
        app,
        [
            "replay",
            str(series),
            "--out",
            str(tmp_path / "o"),
            "--metric",
            "cpu",
            "--attribute",
            "host.name=h1",
        ],
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o" / "scores" / "web.csv").is_file()
    bad = CliRunner().invoke(
        app, ["replay", str(series), "--out", str(tmp_path / "o"), "--attribute", "novalue"]
    )
    assert bad.exit_code != 0 and "KEY=VALUE" in bad.output


def test_bad_rows_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("timestamp,value\n2024-01-01 00:00:00,1\nyesterday,2\n")
    with pytest.raises(ReplayError, match=r"bad.csv:3: timestamp 'yesterday'"):
        replay([path], tmp_path / "out", _settings(tmp_path))
    path.write_text("time,value\n")
    with pytest.raises(ReplayError, match="missing column"):
        replay([path], tmp_path / "out", _settings(tmp_path))
    res = CliRunner().invoke(app, ["replay", str(path), "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and "missing column" in res.output


def _otlp_line(ts: datetime, value: float) -> str:
    return json.dumps(
        {
            "resourceMetrics": [
                {
                    "resource": {
                        "attributes": [{"key": "service.name", "value": {"stringValue": "otel-svc"}}]
                    },
                    "scopeMetrics": [
                        {
                            "metrics": [
                                {
                                    "name": "queue.depth",
                                    "gauge": {
                                        "dataPoints": [
                                            {
                                                "timeUnixNano": str(int(ts.timestamp() * 1e9)),
                                                "asDouble": value,
                                            }
                                        ]
                                    },
                                }
                            ]
                        }
                    ],
                }
            ]
        }
    )


def test_otlp_json_lines(tmp_path: Path) -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    path = tmp_path / "export.jsonl"
    path.write_text(
        "\n".join(_otlp_line(start + timedelta(minutes=i), 5.0 + i % 3) for i in range(100)) + "\n"
    )
    result = replay([path], tmp_path / "out", _settings(tmp_path))
    assert result.stats["points_accepted"] == 100
    (name,) = result.series
    assert "queue.depth" in name and "otel-svc" in name
    rows = _scores(tmp_path / "out" / "scores" / f"{name}.csv")
    assert len(rows) == 100 and rows[-1]["expected"] != ""


def test_replay_fits_seasonal_bands_like_serve(tmp_path: Path) -> None:
    """A series decisions read is fitted on the data's clock (statsmodels, as serve's fitter
    does) and later points are judged by the fitted band; --no-fits keeps the streaming band.
    Deterministic with fits too."""
    from tests.state.test_seasonal import STEP_MS, profile

    pack = tmp_path / "anomaly.yaml"
    pack.write_text(ANOMALY_PACK)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    series = tmp_path / "web.csv"
    lines = ["timestamp,value"]
    rnd = iter(itertools.cycle([0.7, -1.3, 0.2, 1.1, -0.4, -0.9, 1.6, -0.1]))
    for i in range(6 * 288):  # six days of five-minute points
        t = start + timedelta(milliseconds=i * STEP_MS)
        lines.append(f"{t.strftime('%Y-%m-%d %H:%M:%S')},{profile(int(t.timestamp() * 1000)) + next(rnd)}")
    series.write_text("\n".join(lines) + "\n")
    sugg = tmp_path / "s.jsonl"
    # The first decision (day 1) touches the series; from day 3 (the fitter's minimum history)
    # it is fitted once a day; the second decision (day 5) reads points the fit judged.
    sugg.write_text(
        _suggestion(1, start + timedelta(days=1), "web")
        + "\n"
        + _suggestion(2, start + timedelta(days=5), "web")
        + "\n"
    )
    settings = _settings(tmp_path, pack)
    settings.baselines.refit_every = settings.baselines.horizon = 86_400.0  # a few fits, not 50
    fitted = replay([series], tmp_path / "fits", settings, sugg)
    plain = replay([series], tmp_path / "plain", settings, sugg, fits=False)
    first, second = fitted.verdicts
    assert first.evidence.baseline_model is not None and first.evidence.baseline_model.startswith(
        "streaming."
    )
    assert second.evidence.baseline_model is not None and second.evidence.baseline_model.startswith(
        "statsmodels."
    ), second.explanation
    assert second.evidence.baseline_freshness_s is not None and second.evidence.baseline_freshness_s <= 86_400
    assert all(v.evidence.baseline_model.startswith("streaming.") for v in plain.verdicts)  # type: ignore[union-attr]
    # The scores after the fit differ; before the first decision they are the same.
    fits_rows = [repr(r) for r in fitted.series["web"]]  # repr: NaN (no band yet) equals itself
    plain_rows = [repr(r) for r in plain.series["web"]]
    touched = int((start + timedelta(days=1)).timestamp() * 1000)
    n_before = sum(1 for r in fitted.series["web"] if r[0] <= touched)
    assert fits_rows[:n_before] == plain_rows[:n_before]
    assert fits_rows[n_before:] != plain_rows[n_before:]
    again = replay([series], tmp_path / "again", settings, sugg)
    assert (tmp_path / "again" / "verdicts.jsonl").read_bytes() == (
        tmp_path / "fits" / "verdicts.jsonl"
    ).read_bytes()
    assert [repr(r) for r in again.series["web"]] == fits_rows


def test_rules_read_the_per_point_score_replay_writes(tmp_path: Path) -> None:
    """`baseline.score` is the score column of the window's latest point; `max_point_score`
    the highest in the window; `raw_score` the latest point's anomaly before de-duplication."""
    pack = tmp_path / "anomaly.yaml"
    pack.write_text(ANOMALY_PACK)
    series, _, during = _series_with_spike(tmp_path)  # the spike: rows 400-405, `during` row 403
    start = during - timedelta(minutes=5 * 3)
    sugg = tmp_path / "s.jsonl"
    sugg.write_text(_suggestion(1, start, "web") + "\n" + _suggestion(2, during, "web") + "\n")
    result = replay([series], tmp_path / "out", _settings(tmp_path, pack), sugg)
    rows = {
        r["timestamp"]: float(r["score"] or "nan") for r in _scores(tmp_path / "out" / "scores" / "web.csv")
    }
    at_spike, later = (v.trace[0].baseline or {} for v in result.verdicts)

    def stamp(t: datetime) -> str:
        return t.isoformat().replace("+00:00", "Z")

    # The decision at the spike's first point reads that point's score: the episode's alert.
    assert at_spike["score"] == pytest.approx(rows[stamp(start)], rel=1e-6) and at_spike["score"] > 0.5
    # Three points later the spike merely lasts: its score is 0, its raw anomaly still high,
    # and the window (30 minutes) still holds the alert.
    assert later["score"] == pytest.approx(rows[stamp(during)], rel=1e-6) == 0.0
    assert later["raw_score"] > 0.5
    assert later["max_point_score"] == pytest.approx(at_spike["score"], rel=1e-6)
    assert later["max_raw_score"] >= later["raw_score"]
    assert result.verdicts[1].evidence.score == pytest.approx(later["max_raw_score"])


@pytest.mark.parametrize("fmt", ["windows", "rows"])
def test_labels_score_the_replay(tmp_path: Path, fmt: str) -> None:
    """`replay --labels` writes scores.json from the verdicts it made: one claim in the labelled
    spike (confirmed by the band rule), two outside it (suppressed), in both label formats."""
    pack = tmp_path / "anomaly.yaml"
    pack.write_text(ANOMALY_PACK)
    series, before, during = _series_with_spike(tmp_path)
    sugg = tmp_path / "s.jsonl"
    sugg.write_text(
        "\n".join(
            [
                _suggestion(1, before, "web"),
                _suggestion(2, during, "web"),
                _suggestion(3, before - timedelta(hours=2), "web"),
            ]
        )
        + "\n"
    )
    spike = (before + timedelta(minutes=5 * 10), before + timedelta(minutes=5 * 16))  # rows 400-406

    def stamp(t: datetime) -> str:
        return t.strftime("%Y-%m-%d %H:%M:%S")

    if fmt == "windows":
        labels = tmp_path / "windows.json"
        labels.write_text(json.dumps({"data/web.csv": [[stamp(spike[0]), stamp(spike[1])]]}))
    else:
        labels = tmp_path / "labels.csv"
        rows = ["timestamp,label"]
        for i in range(600):
            t = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=5 * i)
            rows.append(f"{stamp(t)},{int(spike[0] <= t < spike[1])}")
        labels.write_text("\n".join(rows) + "\n")
    out = tmp_path / "out"
    res = CliRunner().invoke(
        app,
        [
            "replay",
            str(series),
            "--out",
            str(out),
            "--suggestions",
            str(sugg),
            "--rules",
            str(pack),
            "--no-fits",
            "--labels",
            str(labels),
        ],
    )
    assert res.exit_code == 0, res.output
    scores = json.loads((out / "scores.json").read_text())
    assert scores["true_claims"] == 1 and scores["false_claims"] == 2
    assert scores["labelled_windows"] == 1
    assert scores["verdicts"]["true"]["confirm"] == 1
    assert scores["verdicts"]["false"]["suppress"] == 2
    assert scores["precision"] == 1.0 and scores["recall"] == 1.0
    assert scores["retention"] == scores["confirmation"] == scores["suppression"] == 1.0


def test_labels_errors_name_the_file(tmp_path: Path) -> None:
    series, _, _ = _series_with_spike(tmp_path)
    bad = tmp_path / "labels.csv"
    bad.write_text("timestamp,label\n2024-01-01 00:00:00,0\n2024-01-01 00:05:00,yes\n")
    res = CliRunner().invoke(
        app, ["replay", str(series), "--out", str(tmp_path / "o"), "--no-fits", "--labels", str(bad)]
    )
    assert res.exit_code != 0
    assert f"{bad}:3: label 'yes' is not 0 or 1" in res.output
