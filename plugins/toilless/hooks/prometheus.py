"""Prometheus HTTP API v1 (instant and range queries) through an Airflow HTTP Connection.

API (kept stable, other SOPs use it)::

    hook = PrometheusHook(prometheus_conn_id="prometheus_default", timeout_seconds=30)
    result = hook.query('sum by (pod) (rate(http_requests_total[5m]))', time=None)   # QueryResult
    result.samples            # (Sample(labels={"pod": "web-1"}, timestamp=..., value=0.25), ...)  vector / scalar
    result.by_label("pod")    # {"web-1": 0.25, ...}
    result = hook.query_range(expr, start, end, step)                                   # QueryResult
    result.series             # (Series(labels=..., points=((ts, value), ...)), ...)                  matrix

- The Connection is an ``http`` Connection (the HTTP provider's fields): ``host`` (with scheme, or ``schema`` =
  http/https), ``port``, a path prefix in ``host`` if Prometheus runs under one (``http://mon/prometheus``),
  ``login``/``password`` for basic auth, ``extra`` for headers (``{"Authorization": "Bearer ..."}``) and ``verify``.
- Every value is checked before it is sent (:mod:`toilless.common.promql`): the expression's structure, aware times,
  a range within Prometheus' 11,000 points per series.
- Errors: Prometheus refusing the query (``bad_data``, HTTP 400 or 422, or any other 4xx such as 401/403/404, which a
  retry cannot fix) raises :class:`PrometheusQueryError`, an ``InvalidInput``: the task fails at once, not retried; its
  message carries Prometheus' error text masked and bounded. A 5xx, 429, timeout or connection error is retried here
  (``attempts`` tries with a short backoff) and then raises :class:`PrometheusUnavailable`, which the task's own retries
  handle. An answer that is not Prometheus JSON raises :class:`PrometheusAnswerError`.
- Answers are bounded: at most ``max_response_bytes`` read and ``max_series`` series kept (more is an error that says
  to narrow the query, not a silent cut).
- Values are floats (``NaN``, ``+Inf`` as Prometheus sends them); labels are plain ``dict[str, str]``.

No SOP logic here: which queries to run and what the numbers mean is the SOP's business.
"""

from __future__ import annotations

import json
import logging
import time as time_module
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from airflow.providers.http.hooks.http import HttpHook

from toilless.common import promql
from toilless.common.errors import InvalidInput
from toilless.common.slack import clean

log = logging.getLogger(__name__)

#: Longest Prometheus error text kept in an exception message.
MAX_ERROR_CHARS = 500
#: HTTP statuses retried: Prometheus answers 503 on an evaluation timeout or while starting or stopping.
RETRIED_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class PrometheusQueryError(promql.PromQLError):
    """Prometheus refused the request (bad_data, 400, 422, another 4xx): fix the query or the Connection; not retried."""


class PrometheusUnavailable(RuntimeError):
    """No usable answer after every try (5xx, 429, timeout, connection refused): transient, the task may retry."""


class PrometheusAnswerError(RuntimeError):
    """The answer is not the Prometheus API's JSON (a proxy's HTML page, a truncated body, an unknown result type)."""


@dataclass(frozen=True)
class Sample:
    """One sample of an instant vector (or a scalar, with no labels)."""

    labels: dict[str, str]
    timestamp: float
    value: float


@dataclass(frozen=True)
class Series:
    """One series of a range query: ``points`` are ``(timestamp, value)`` in time order."""

    labels: dict[str, str]
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class QueryResult:
    """What a query returned: ``samples`` for ``vector``/``scalar``, ``series`` for ``matrix``."""

    result_type: str
    samples: tuple[Sample, ...] = ()
    series: tuple[Series, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    def by_label(self, label: str) -> dict[str, float]:
        """Instant samples keyed by one label's value (samples without it are left out)."""
        return {sample.labels[label]: sample.value for sample in self.samples if label in sample.labels}

    def scalar(self) -> float | None:
        """The value of a one-sample answer (``scalar`` or a one-element vector), None when empty."""
        if not self.samples:
            return None
        if len(self.samples) > 1:
            raise PrometheusAnswerError(f"expected one sample, got {len(self.samples)}")
        return self.samples[0].value


class PrometheusHook(HttpHook):
    """Prometheus' HTTP API v1 through an ``http`` Connection.

    :param prometheus_conn_id: the HTTP Connection to Prometheus.
    :param timeout_seconds: evaluation timeout sent to Prometheus; the HTTP read waits a little longer.
    :param attempts: tries for a 5xx, 429, timeout or connection error before :class:`PrometheusUnavailable`.
    :param backoff_seconds: wait before the second try, doubled each further try (capped at 10 s).
    :param max_series: most series (or samples) accepted in one answer.
    :param max_response_bytes: largest answer read.
    """

    conn_name_attr = "prometheus_conn_id"
    default_conn_name = "prometheus_default"
    conn_type = "http"
    hook_name = "Prometheus"

    def __init__(
        self,
        *,
        prometheus_conn_id: str = default_conn_name,
        timeout_seconds: float = 30.0,
        attempts: int = 3,
        backoff_seconds: float = 1.0,
        max_series: int = 10_000,
        max_response_bytes: int = 32 * 1024 * 1024,
    ) -> None:
        super().__init__(method="POST", http_conn_id=prometheus_conn_id)
        self.prometheus_conn_id = prometheus_conn_id
        self.timeout_seconds = promql.seconds(timeout_seconds, what="timeout_seconds")
        self.attempts = max(1, int(attempts))
        self.backoff_seconds = max(0.0, float(backoff_seconds))
        self.max_series = int(max_series)
        self.max_response_bytes = int(max_response_bytes)
        #: Replaced in tests to run retries without waiting.
        self.sleep: Callable[[float], None] = time_module.sleep

    @cached_property
    def session(self) -> Any:
        try:
            return self.get_conn()
        except Exception as err:
            if "NotFound" not in type(err).__name__:
                raise
            raise PrometheusQueryError(f"Connection {self.prometheus_conn_id!r} is not defined: {err}") from err

    @property
    def api_url(self) -> str:
        self.session  # noqa: B018 - sets base_url
        return self.base_url.rstrip("/") + "/api/v1"

    # -- queries ---------------------------------------------------------------------------------------------------
    def query(self, expr: str, time: datetime | float | None = None) -> QueryResult:
        """Instant query: ``expr`` evaluated at ``time`` (now if None)."""
        form = {"query": promql.check_promql(expr), "timeout": promql.duration(self.timeout_seconds)}
        if time is not None:
            form["time"] = _format_time(promql.timestamp(time))
        return self._request("query", form)

    def query_range(
        self,
        expr: str,
        start: datetime | float,
        end: datetime | float,
        step: timedelta | float,
    ) -> QueryResult:
        """Range query from ``start`` to ``end`` every ``step``; refused before sending above 11,000 points."""
        start_s, end_s, step_s = promql.check_range(start, end, step)
        form = {
            "query": promql.check_promql(expr),
            "start": _format_time(start_s),
            "end": _format_time(end_s),
            "step": f"{step_s:g}",
            "timeout": promql.duration(self.timeout_seconds),
        }
        return self._request("query_range", form)

    # -- transport -------------------------------------------------------------------------------------------------
    def _request(self, endpoint: str, form: dict[str, str]) -> QueryResult:
        import requests

        url = f"{self.api_url}/{endpoint}"
        last_problem = ""
        for attempt in range(1, self.attempts + 1):
            if attempt > 1:
                self.sleep(min(10.0, self.backoff_seconds * 2 ** (attempt - 2)))
            try:
                response = self.session.post(
                    url, data=form, timeout=(min(10.0, self.timeout_seconds), self.timeout_seconds + 5), stream=True
                )
            except (requests.ConnectionError, requests.Timeout) as err:
                last_problem = f"{type(err).__name__}: {err}"
                log.warning("Prometheus %s try %d/%d: %s", endpoint, attempt, self.attempts, clean(last_problem, 300))
                continue
            try:
                status = response.status_code
                body = self._read(response)
            finally:
                response.close()
            if status in RETRIED_STATUSES:
                last_problem = f"HTTP {status}: {_error_text(body)}"
                log.warning("Prometheus %s try %d/%d: %s", endpoint, attempt, self.attempts, clean(last_problem, 300))
                continue
            return self._parse(status, body, form["query"])
        raise PrometheusUnavailable(
            f"Prometheus at {clean(url, 300)} gave no answer after {self.attempts} tries: "
            f"{clean(last_problem, MAX_ERROR_CHARS)}"
        )

    def _read(self, response: Any) -> bytes:
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(chunk_size=64 * 1024):
            size += len(chunk)
            if size > self.max_response_bytes:
                raise PrometheusAnswerError(
                    f"Prometheus answered more than {self.max_response_bytes:,} bytes: narrow the query"
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def _parse(self, status: int, body: bytes, expr: str) -> QueryResult:
        try:
            answer = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            answer = None
        if 400 <= status < 500:
            error_type = answer.get("errorType") if isinstance(answer, dict) else None
            raise PrometheusQueryError(
                f"Prometheus refused the query (HTTP {status}{f', {clean(error_type, 40)}' if error_type else ''}): "
                f"{clean(_error_text(body), MAX_ERROR_CHARS)}; query: {clean(expr, 300)}"
            )
        if not isinstance(answer, dict) or status != 200:
            raise PrometheusAnswerError(
                f"Prometheus answered HTTP {status} with {clean(body[:200].decode('utf-8', 'replace'), 200)!r}"
            )
        if answer.get("status") != "success":
            raise PrometheusQueryError(
                f"Prometheus refused the query ({clean(answer.get('errorType'), 40)}): "
                f"{clean(answer.get('error'), MAX_ERROR_CHARS)}; query: {clean(expr, 300)}"
            )
        warnings = tuple(clean(warning, 300) for warning in (answer.get("warnings") or [])[:10])
        for warning in warnings:
            log.warning("Prometheus warning: %s", warning)
        return parse_data(answer.get("data"), max_series=self.max_series, warnings=warnings)


def parse_data(data: Any, *, max_series: int, warnings: tuple[str, ...] = ()) -> QueryResult:
    """The API's ``data`` object as a :class:`QueryResult`; :class:`PrometheusAnswerError` if its shape is wrong."""
    if not isinstance(data, dict):
        raise PrometheusAnswerError("answer has no data object")
    result_type = data.get("resultType")
    result = data.get("result")
    try:
        if result_type == "scalar":
            return QueryResult("scalar", samples=(Sample({}, *_point(result)),), warnings=warnings)
        if result_type == "string":
            return QueryResult("string", warnings=warnings)
        if not isinstance(result, list):
            raise PrometheusAnswerError(f"result of type {clean(result_type, 40)!r} is not a list")
        if len(result) > max_series:
            raise PrometheusQueryError(
                f"the query returned {len(result):,} series, more than {max_series:,}: narrow it (by label or sum by)"
            )
        if result_type == "vector":
            samples = tuple(Sample(_labels(item["metric"]), *_point(item["value"])) for item in result)
            return QueryResult("vector", samples=samples, warnings=warnings)
        if result_type == "matrix":
            series = tuple(
                Series(_labels(item["metric"]), tuple(_point(point) for point in item["values"])) for item in result
            )
            return QueryResult("matrix", series=series, warnings=warnings)
    except (KeyError, TypeError, ValueError) as err:
        if isinstance(err, InvalidInput):
            raise
        raise PrometheusAnswerError(f"malformed {clean(result_type, 40)} result: {clean(err, 200)}") from err
    raise PrometheusAnswerError(f"unknown result type {clean(result_type, 40)!r}")


def _labels(metric: Any) -> dict[str, str]:
    if not isinstance(metric, dict):
        raise TypeError("metric is not an object")
    return {str(name): str(value) for name, value in metric.items()}


def _point(point: Any) -> tuple[float, float]:
    if not isinstance(point, (list, tuple)) or len(point) != 2:
        raise TypeError("a sample is not [timestamp, value]")
    # Prometheus sends values as strings ("0.25", "NaN", "+Inf"); float() reads all of them.
    return float(point[0]), float(point[1])


def _format_time(seconds: float) -> str:
    return f"{seconds:.3f}"


def _error_text(body: bytes) -> str:
    """Prometheus' ``error`` field if the body is its JSON, else the start of the body."""
    try:
        answer = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return body[: MAX_ERROR_CHARS * 2].decode("utf-8", "replace")
    if isinstance(answer, Mapping) and answer.get("error"):
        return str(answer["error"])
    return body[: MAX_ERROR_CHARS * 2].decode("utf-8", "replace")
