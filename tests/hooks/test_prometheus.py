"""PrometheusHook against the real Prometheus (Debian package) and against a scripted HTTP server for the failures
a real one will not produce on demand (5xx, HTML, huge answers)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from sandbox.ports import HOST, free_port
from tests.fixtures.prometheus import PrometheusServer
from toilless.common.errors import InvalidInput
from toilless.hooks.prometheus import (
    PrometheusAnswerError,
    PrometheusHook,
    PrometheusQueryError,
    PrometheusUnavailable,
    parse_data,
)


def _use_connection(monkeypatch: pytest.MonkeyPatch, url: str, conn_id: str = "prometheus_test", **extra: Any) -> str:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "http", "host": url, **extra}))
    return conn_id


class Scripted:
    """Answers each POST with the next (status, body) in ``answers``; records every request form."""

    def __init__(self, answers: list[tuple[int, bytes]]) -> None:
        self.answers = list(answers)
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                from urllib.parse import parse_qs

                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                form = {key: values[0] for key, values in parse_qs(raw).items()}
                scripted.requests.append((self.path, self.headers.get("Authorization") or "", form))
                status, body = scripted.answers.pop(0) if scripted.answers else (500, b"no more answers")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server.server_address[1]}"


@pytest.fixture
def scripted() -> Iterator[Any]:
    servers: list[Scripted] = []

    def start(*answers: tuple[int, bytes]) -> Scripted:
        server = Scripted(list(answers))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.server.shutdown()
        server.server.server_close()


def _ok(result_type: str, result: Any) -> tuple[int, bytes]:
    return 200, json.dumps({"status": "success", "data": {"resultType": result_type, "result": result}}).encode()


def _hook(conn_id: str, **kwargs: Any) -> PrometheusHook:
    hook = PrometheusHook(prometheus_conn_id=conn_id, backoff_seconds=0, **kwargs)
    hook.sleep = lambda seconds: None
    return hook


# -- the real Prometheus -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def requests_series(prometheus_server: PrometheusServer) -> PrometheusServer:
    values = prometheus_server.exporter.values
    values['hook_requests_total{namespace="hooktest",pod="web-1"}'] = 100
    values['hook_requests_total{namespace="hooktest",pod="web-2"}'] = 50
    prometheus_server.wait_for_scrapes('hook_requests_total{namespace="hooktest"}')
    return prometheus_server


def test_instant_vector_from_real_prometheus(
    requests_series: PrometheusServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = _hook(_use_connection(monkeypatch, requests_series.url))
    result = hook.query('sum by (pod) (hook_requests_total{namespace="hooktest"})')
    assert result.result_type == "vector"
    assert result.by_label("pod") == {"web-1": 100.0, "web-2": 50.0}
    assert hook.query('scalar(sum(hook_requests_total{namespace="hooktest"}))').scalar() == 150.0


def test_instant_query_at_a_time_before_the_data_is_empty(
    requests_series: PrometheusServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = _hook(_use_connection(monkeypatch, requests_series.url))
    past = datetime.now(UTC) - timedelta(days=1)
    assert hook.query('hook_requests_total{namespace="hooktest"}', time=past).samples == ()


def test_range_query_from_real_prometheus(requests_series: PrometheusServer, monkeypatch: pytest.MonkeyPatch) -> None:
    hook = _hook(_use_connection(monkeypatch, requests_series.url))
    end = datetime.now(UTC)
    result = hook.query_range(
        'hook_requests_total{namespace="hooktest",pod="web-1"}', end - timedelta(minutes=5), end, 1
    )
    assert result.result_type == "matrix"
    (series,) = result.series
    assert series.labels["pod"] == "web-1"
    assert len(series.points) >= 1
    assert {value for _, value in series.points} == {100.0}
    assert [ts for ts, _ in series.points] == sorted(ts for ts, _ in series.points)


def test_bad_promql_is_refused_once_not_retried(
    prometheus_server: PrometheusServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = _hook(_use_connection(monkeypatch, prometheus_server.url))
    # Structurally fine (brackets balance), but not PromQL: only Prometheus' parser can tell.
    with pytest.raises(PrometheusQueryError, match=r"HTTP 400, bad_data.*parse error") as caught:
        hook.query("sum by (pod) (rate(http_requests_total[5m])) ++ nonsense()")
    assert isinstance(caught.value, InvalidInput)


def test_range_query_with_too_many_points_is_refused_before_sending(
    scripted: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = scripted(_ok("matrix", []))
    hook = _hook(_use_connection(monkeypatch, server.url))
    end = datetime.now(UTC)
    with pytest.raises(InvalidInput, match="11,000"):
        hook.query_range("up", end - timedelta(days=1), end, timedelta(seconds=5))
    assert server.requests == []


def test_real_prometheus_refuses_the_range_we_refuse(
    prometheus_server: PrometheusServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Our 11,000-point rule is Prometheus' own: just over it, the server says the same (checked with the client off)."""
    import requests

    end = time.time()
    answer = requests.post(
        f"{prometheus_server.url}/api/v1/query_range",
        data={"query": "up", "start": end - 11_001, "end": end, "step": 1},
        timeout=10,
    )
    assert answer.status_code == 400
    assert "11,000 points" in answer.json()["error"] or "11000" in answer.json()["error"]


# -- failures a real Prometheus will not produce on demand -----------------------------------------------------------
def test_5xx_is_retried_then_answers(scripted: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    server = scripted((503, b'{"status":"error","errorType":"timeout","error":"query timed out"}'), _ok("vector", []))
    hook = _hook(_use_connection(monkeypatch, server.url), attempts=3)
    assert hook.query("up").samples == ()
    assert len(server.requests) == 2


def test_5xx_every_time_is_unavailable_after_the_attempts(scripted: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    server = scripted(*[(502, b"<html>bad gateway</html>")] * 3)
    hook = _hook(_use_connection(monkeypatch, server.url), attempts=3)
    with pytest.raises(PrometheusUnavailable, match="after 3 tries: HTTP 502") as caught:
        hook.query("up")
    assert not isinstance(caught.value, InvalidInput)
    assert len(server.requests) == 3


def test_connection_refused_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    hook = _hook(_use_connection(monkeypatch, f"http://{HOST}:{free_port()}"), attempts=2)
    with pytest.raises(PrometheusUnavailable, match="after 2 tries: ConnectionError"):
        hook.query("up")


@pytest.mark.parametrize("status", [pytest.param(400, id="400"), pytest.param(422, id="422")])
def test_refusal_is_not_retried_and_its_text_masked_and_bounded(
    scripted: Any, monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    error = "bad_data: postgresql://app:hunter2secret@db/x " + "y" * 5000
    server = scripted(
        (status, json.dumps({"status": "error", "errorType": "bad_data", "error": error}).encode()),
        _ok("vector", []),
    )
    hook = _hook(_use_connection(monkeypatch, server.url), attempts=3)
    with pytest.raises(PrometheusQueryError) as caught:
        hook.query("up")
    message = str(caught.value)
    assert "hunter2secret" not in message
    assert "***" in message
    assert len(message) < 1200
    assert len(server.requests) == 1


def test_forbidden_is_not_retried(scripted: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    server = scripted((403, b"forbidden"), _ok("vector", []))
    hook = _hook(_use_connection(monkeypatch, server.url))
    with pytest.raises(PrometheusQueryError, match="HTTP 403"):
        hook.query("up")
    assert len(server.requests) == 1


def test_html_answer_is_an_answer_error(scripted: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    server = scripted((200, b"<html>login page</html>"))
    hook = _hook(_use_connection(monkeypatch, server.url))
    with pytest.raises(PrometheusAnswerError, match="login page"):
        hook.query("up")


def test_answer_over_the_byte_cap_is_refused(scripted: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    server = scripted(_ok("vector", [{"metric": {"pod": "p" * 100}, "value": [1, "1"]}] * 50))
    hook = _hook(_use_connection(monkeypatch, server.url), max_response_bytes=1000)
    with pytest.raises(PrometheusAnswerError, match="more than 1,000 bytes"):
        hook.query("up")


def test_too_many_series_is_a_clear_error(scripted: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    server = scripted(_ok("vector", [{"metric": {"pod": f"p{i}"}, "value": [1, "1"]} for i in range(5)]))
    hook = _hook(_use_connection(monkeypatch, server.url), max_series=4)
    with pytest.raises(PrometheusQueryError, match="5 series, more than 4"):
        hook.query("up")


def test_form_sent_with_timeout_time_auth_and_path_prefix(scripted: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    server = scripted(_ok("vector", []), _ok("matrix", []))
    conn_id = _use_connection(monkeypatch, f"{server.url}/prometheus", login="reader", password="pw")
    hook = _hook(conn_id, timeout_seconds=7)
    moment = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    hook.query("up", time=moment)
    hook.query_range("up", moment - timedelta(hours=1), moment, timedelta(minutes=1))
    (path1, auth, form1), (path2, _, form2) = server.requests
    assert path1 == "/prometheus/api/v1/query"
    assert path2 == "/prometheus/api/v1/query_range"
    assert auth.startswith("Basic ")
    assert form1 == {"query": "up", "timeout": "7s", "time": f"{moment.timestamp():.3f}"}
    assert form2["step"] == "60"
    assert float(form2["end"]) - float(form2["start"]) == 3600


def test_naive_time_is_refused_before_sending(scripted: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    server = scripted(_ok("vector", []))
    hook = _hook(_use_connection(monkeypatch, server.url))
    with pytest.raises(InvalidInput, match="no time zone"):
        hook.query("up", time=datetime(2026, 1, 1))
    assert server.requests == []


def test_missing_connection_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_PROMETHEUS_NOWHERE", raising=False)
    with pytest.raises(PrometheusQueryError, match=r"prometheus_nowhere.*not defined"):
        _hook("prometheus_nowhere").query("up")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param({"resultType": "scalar", "result": [1.5, "NaN"]}, "scalar", id="scalar-nan"),
        pytest.param(
            {"resultType": "vector", "result": [{"metric": {"pod": "a"}, "value": [1, "+Inf"]}]}, "vector", id="inf"
        ),
        pytest.param({"resultType": "string", "result": [1, "x"]}, "string", id="string"),
    ],
)
def test_parse_data_types(data: dict[str, Any], expected: str) -> None:
    assert parse_data(data, max_series=10).result_type == expected


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(None, id="no-data"),
        pytest.param({"resultType": "vector", "result": [{"metric": {}, "value": [1]}]}, id="short-sample"),
        pytest.param({"resultType": "vector", "result": [{"value": [1, "1"]}]}, id="no-metric"),
        pytest.param({"resultType": "vector", "result": [{"metric": {}, "value": [1, "abc"]}]}, id="not-a-number"),
        pytest.param({"resultType": "histogram", "result": []}, id="unknown-type"),
        pytest.param({"resultType": "matrix", "result": {}}, id="not-a-list"),
    ],
)
def test_parse_data_refuses_wrong_shapes(data: Any) -> None:
    with pytest.raises(PrometheusAnswerError):
        parse_data(data, max_series=10)
