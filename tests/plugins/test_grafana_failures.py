"""The Grafana plugin against the contract server when Grafana fails: what is retried, what is
permanent, that a retry never duplicates an annotation, and that the token never leaks."""

from __future__ import annotations

import logging
import socket
import time
import traceback

import pytest

from referee.hookspecs import SinkRetryableError
from referee_grafana import GrafanaDeliveryError, GrafanaRetryableError
from tests.peers.grafana_contract.server import GrafanaContractServer
from tests.plugins.grafana_cases import (
    make_case,
    make_settings,
    make_sink,
)


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_server_errors_and_throttling_are_retryable(grafana: GrafanaContractServer, status: int) -> None:
    sink = make_sink(make_settings(grafana))
    verdict, suggestion = make_case()
    grafana.fail_next(status, retry_after=7)

    with pytest.raises(SinkRetryableError) as caught:
        sink.deliver(verdict, suggestion, None)

    assert isinstance(caught.value, GrafanaRetryableError)
    assert caught.value.status == status
    assert caught.value.retry_after == 7
    assert grafana.annotations == {}
    assert sink.deliver(verdict, suggestion, None) is not None  # the retry goes through


def test_patch_failing_with_500_is_retryable_and_does_not_duplicate(grafana: GrafanaContractServer) -> None:
    sink = make_sink(make_settings(grafana))
    verdict, suggestion = make_case()
    ref = sink.deliver(verdict, suggestion, None)
    grafana.fail_next(500)

    with pytest.raises(SinkRetryableError):
        sink.deliver(verdict, suggestion, ref)

    assert list(grafana.annotations) == [int(ref or 0)]


def test_slow_grafana_times_out_as_retryable(grafana: GrafanaContractServer) -> None:
    sink = make_sink(make_settings(grafana, timeout_s=0.5))
    verdict, suggestion = make_case()
    grafana.delay_next(5.0)

    started = time.monotonic()
    with pytest.raises(SinkRetryableError, match=r"no answer within 0\.5 s"):
        sink.deliver(verdict, suggestion, None)

    assert time.monotonic() - started < 3.0
    assert [r.method for r in grafana.requests] == ["GET"]


def test_unreachable_grafana_is_retryable() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sink = make_sink(make_settings(url=f"http://127.0.0.1:{port}", token="glsa_unreachable", timeout_s=0.5))
    verdict, suggestion = make_case()

    with pytest.raises(SinkRetryableError):
        sink.deliver(verdict, suggestion, None)


def test_wrong_token_is_a_permanent_error(grafana: GrafanaContractServer) -> None:
    sink = make_sink(make_settings(grafana, token="glsa_wrong_token_0123456789"))
    verdict, suggestion = make_case()

    with pytest.raises(GrafanaDeliveryError) as caught:
        sink.deliver(verdict, suggestion, None)

    assert not isinstance(caught.value, SinkRetryableError)
    assert caught.value.status == 401
    assert "glsa_wrong_token_0123456789" not in str(caught.value)
    assert grafana.requests[-1].authorized is False
    assert grafana.annotations == {}


@pytest.mark.parametrize("status", [400, 403, 404, 413])
def test_other_client_errors_are_permanent(grafana: GrafanaContractServer, status: int) -> None:
    sink = make_sink(make_settings(grafana))
    verdict, suggestion = make_case()
    grafana.fail_next(status)

    with pytest.raises(GrafanaDeliveryError) as caught:
        sink.deliver(verdict, suggestion, None)

    assert caught.value.status == status
    assert not isinstance(caught.value, SinkRetryableError)


def test_token_never_leaks(grafana: GrafanaContractServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    settings = make_settings(grafana, timeout_s=0.5)
    sink = make_sink(settings)
    verdict, suggestion = make_case()
    token = grafana.token
    failures: list[BaseException] = []

    ref = sink.deliver(verdict, suggestion, None)
    sink.deliver(verdict, suggestion, ref)
    # A server (or proxy) that echoes the Authorization header back in its error.
    for status in (500, 401, 403, 400, 429):
        grafana.fail_next(status, message=f"rejected Authorization: Bearer {token}")
        with pytest.raises((SinkRetryableError, GrafanaDeliveryError)) as caught:
            sink.deliver(verdict, suggestion, None)
        failures.append(caught.value)
    grafana.delay_next(3.0)
    with pytest.raises(SinkRetryableError) as timed_out:
        sink.deliver(verdict, suggestion, None)
    failures.append(timed_out.value)

    for shown in (repr(sink), str(sink), repr(settings), str(settings), caplog.text):
        assert token not in shown
    for failure in failures:
        assert token not in str(failure)
        assert token not in repr(failure)
        assert token not in "".join(traceback.format_exception(failure))
    assert "**********" in str(failures[0])


def test_a_retry_after_a_timed_out_post_does_not_duplicate(grafana: GrafanaContractServer) -> None:
    """The POST times out on our side but Grafana writes it anyway; the retry finds it by its
    decision tag and updates it instead of writing a second annotation."""
    sink = make_sink(make_settings(grafana, timeout_s=0.3))
    verdict, suggestion = make_case()
    grafana.delay_next(0.0)  # the look-up before the POST answers at once...
    grafana.delay_next(1.0)  # ...the POST only after the client gave up
    with pytest.raises(SinkRetryableError):
        sink.deliver(verdict, suggestion, None)
    deadline = time.monotonic() + 5
    while not grafana.annotations and time.monotonic() < deadline:
        time.sleep(0.05)  # the slow server finishes writing
    ref = sink.deliver(verdict, suggestion, None)
    assert len(grafana.annotations) == 1
    assert ref == str(next(iter(grafana.annotations)))
