"""`claim.metric` names the claimed metric; `claim.signal`, its first name, stays an alias."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from referee.ingest.alerts import ClaimRule
from referee.models import Claim, Suggestion


def test_metric_and_its_deprecated_alias_are_kept_equal() -> None:
    assert Claim(kind="anomaly", metric="queue.depth").signal == "queue.depth"
    assert Claim(kind="anomaly", signal="queue.depth").metric == "queue.depth"
    both = Claim(kind="anomaly", metric="queue.depth", signal="queue.depth")
    assert (both.metric, both.signal) == ("queue.depth", "queue.depth")
    assert Claim(kind="anomaly").metric is None


def test_disagreeing_names_are_refused() -> None:
    with pytest.raises(ValidationError, match="disagree"):
        Claim(kind="anomaly", metric="a", signal="b")


def test_rules_see_both_names_in_the_suggestion_json() -> None:
    s = Suggestion(id="1", subject={"service.name": "web"}, claim=Claim(kind="anomaly", signal="m"))
    claim = s.model_dump(exclude_none=True)["claim"]
    assert claim["metric"] == claim["signal"] == "m"


def test_alert_claim_rules_take_either_name() -> None:
    assert ClaimRule(match={"alertname": "x"}, kind="anomaly", metric="m").metric == "m"
    assert ClaimRule(match={"alertname": "x"}, kind="anomaly", signal="m").signal == "m"
