"""The alert intake attacked with generated hostile deliveries (issue 12, acceptance): a bounded, seeded fuzz run.

Over 1,000 payloads mixing deep nesting, huge numbers, lone surrogates and NUL, control characters, huge and many
labels, bad timestamps, Slack markup, javascript: URLs, path traversal in labels, garbage types, duplicates and
out-of-order firing/resolved notifications. Promises checked after each delivery and at the end:

* no 5xx (a permanent problem is a 4xx, so Alertmanager never loops on it);
* no run from a refused (4xx) delivery, and no run from a firing notification whose resolved one came first;
* every Slack message the intake writes has no markup that outside text could have produced (mentions, links to
  hosts nobody configured, javascript: links) and is within Slack's limits, as built and as posted.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.fixtures.alert_intake import TARGET_DAG, IntakeHarness
from tests.fixtures.slack_checks import limit_problems, markup_problems

pytestmark = pytest.mark.integration

SEED = 20261124
DELIVERIES = 1100
#: include/config/alert_intake.yaml link_hosts plus the Airflow UI of the test session (AIRFLOW__API__BASE_URL).
ALLOWED_HOSTS = {"grafana.example.com", "kibana.example.com", "127.0.0.1"}

HOSTILE_TEXT = [
    "<!channel>",
    "<!here|here>",
    "<!everyone>",
    "<@U0123ABC>",
    "<#C0123ABC>",
    "<https://evil.example|click here>",
    "<javascript:alert(1)|ok>",
    "@channel ping",
    "@here",
    "`",
    "```",
    "x` <!channel> `y",
    "*bold* _it_ ~s~",
    "&lt;!channel&gt;",
    "&amp;",
    "https://evil.example/login",
    "javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "\u202eevil\u202c",
    "line1\nline2\r\nline3",
    "tab\tbell\x07esc\x1b[31mred",
    "../../etc/passwd",
    "/../../etc",
    "..\\..\\windows",
    "%2e%2e%2fetc",
    "|>",
    "ünïcødé 😀",
    "",
]
HOSTILE_URLS = [
    "javascript:alert(1)",
    "JAVASCRIPT:alert(1)",
    "https://evil.example/x",
    "http://grafana.example.com.evil.example/",
    "https://user:pw@grafana.example.com/",
    "ftp://grafana.example.com/",
    "http://alertmanager.local:9093",
    "https://grafana.example.com/ok?a=1&b=<x>|y",
    "",
]
ROUTED = ["TestDiskFull", "TestQueueFull", "TestNotifyOnly", "TestBadCount"]


class Fuzzer:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.sent: list[dict[str, Any]] = []  # earlier payloads, re-sent as duplicates

    def text(self, limit: int = 60) -> str:
        rng = self.rng
        parts = [rng.choice(HOSTILE_TEXT) for _ in range(rng.randint(1, 3))]
        if rng.random() < 0.3:
            parts.append("".join(chr(rng.randint(0x20, 0x2FFF)) for _ in range(rng.randint(1, 20))))
        return " ".join(parts)[:limit]

    def alert(self) -> dict[str, Any]:
        rng = self.rng
        alertname = rng.choice(ROUTED) if rng.random() < 0.6 else self.text()
        labels = {"alertname": alertname or "x"}
        labels["environment"] = rng.choice(["prod", "staging", self.text(20)])
        # Few distinct targets, some hostile: duplicates and busy targets happen, path traversal included.
        labels["instance"] = rng.choice(["db-1", "db-2", "../../etc", "/../../etc", "q-1", self.text(30)])
        if rng.random() < 0.3:
            labels["mountpoint"] = rng.choice(["/../../etc", "/var/log/../../root", "/mnt/logs"])
        if alertname == "TestBadCount":
            labels["count"] = rng.choice(["3", "many", "-1", self.text(10)])
        for _ in range(rng.randint(0, 4)):
            labels[f"x_{rng.randint(0, 99)}"] = self.text()
        status = rng.choice(["firing", "firing", "resolved"])
        starts = f"2026-11-24T1{rng.randint(0, 1)}:{rng.randint(0, 59):02d}:00Z"
        identity = json.dumps(labels, sort_keys=True).encode("utf-8", "replace")
        return {
            "status": status,
            "labels": labels,
            "annotations": {"summary": self.text(200), "description": self.text(500)},
            "startsAt": starts,
            "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-11-24T12:05:00Z",
            "generatorURL": rng.choice(HOSTILE_URLS),
            "fingerprint": hashlib.sha256(identity).hexdigest()[:16],
        }

    def payload(self, *alerts: dict[str, Any]) -> dict[str, Any]:
        rng = self.rng
        return {
            "version": "4",
            "groupKey": self.text(),
            "truncatedAlerts": 0,
            "status": alerts[0]["status"],
            "receiver": rng.choice(["toilless", "am-b", self.text(20)]),
            "groupLabels": {},
            "commonLabels": {},
            "commonAnnotations": {},
            "externalURL": rng.choice(HOSTILE_URLS),
            "alerts": list(alerts),
        }

    # -- mutations: each returns (body, must_be_refused) ---------------------------------------------------------------
    def valid(self) -> tuple[Any, bool]:
        payload = self.payload(*[self.alert() for _ in range(self.rng.randint(1, 3))])
        self.sent.append(payload)
        return payload, False

    def duplicate(self) -> tuple[Any, bool]:
        if not self.sent:
            return self.valid()
        return self.rng.choice(self.sent), False

    def out_of_order(self) -> tuple[Any, bool]:
        """A resolved notification of a (possibly) earlier alert, or a firing one whose resolved came first."""
        if not self.sent:
            return self.valid()
        previous = self.rng.choice(self.sent)
        flipped = [
            {
                **alert,
                "status": "resolved" if alert["status"] == "firing" else "firing",
                "endsAt": "2026-11-24T12:05:00Z" if alert["status"] == "firing" else "0001-01-01T00:00:00Z",
            }
            for alert in previous["alerts"]
        ]
        payload = self.payload(*flipped)
        self.sent.append(payload)
        return payload, False

    def deep(self) -> tuple[Any, bool]:
        depth = self.rng.choice([33, 200, 3000])
        inner = "[" * depth + "]" * depth
        body = json.dumps(self.payload(self.alert()))
        return (body[:-1] + f', "extra": {inner}}}').encode(), True

    def huge_number(self) -> tuple[Any, bool]:
        digits = "9" * self.rng.choice([31, 400, 5000])
        field = self.rng.choice(["truncatedAlerts", "extra"])
        body = json.dumps(self.payload(self.alert()))
        return (body[:-1] + f', "{field}x": {digits}}}').encode(), True

    def bad_unicode(self) -> tuple[Any, bool]:
        payload = self.payload(self.alert())
        bad = self.rng.choice(["\ud800", "\udfff", "a\x00b"])
        target = self.rng.choice(["label", "key", "annotation", "receiver", "fingerprint"])
        alert = payload["alerts"][0]
        if target == "label":
            alert["labels"]["instance"] = bad
        elif target == "key":
            alert["labels"][bad] = "v"
        elif target == "annotation":
            alert["annotations"]["summary"] = bad
        elif target == "receiver":
            payload["receiver"] = bad
        else:
            alert["fingerprint"] = bad
        return payload, True

    def oversized(self) -> tuple[Any, bool]:
        payload = self.payload(self.alert())
        alert = payload["alerts"][0]
        choice = self.rng.choice(["value", "many", "name", "annotation", "target", "url", "common"])
        if choice == "value":
            alert["labels"]["big"] = "v" * self.rng.choice([1025, 50_000, 900_000])
        elif choice == "many":
            alert["labels"].update({f"l{index}": "v" for index in range(self.rng.choice([65, 2000, 20_000]))})
        elif choice == "name":
            alert["labels"]["n" * 129] = "v"
        elif choice == "annotation":
            alert["annotations"]["description"] = "<!channel>" * 1000
        elif choice == "target":
            alert["labels"].update(alertname="TestDiskFull", environment="prod", instance="i" * 1000)
            alert["status"] = "firing"
        elif choice == "url":
            payload["externalURL"] = "https://grafana.example.com/" + "a" * 3000
        else:
            payload["commonLabels"] = {f"c{index}": "v" for index in range(100)}
        return payload, True

    def bad_time(self) -> tuple[Any, bool]:
        payload = self.payload(self.alert())
        alert = payload["alerts"][0]
        field = self.rng.choice(["startsAt", "startsAt", "endsAt"])
        alert[field] = self.rng.choice(
            [
                12345,
                "12345",
                1.5e9,
                "0001-01-01T00:00:00Z",
                "9999-12-31T23:59:59Z",
                "2999-01-01T00:00:00Z",
                "2026-13-45T99:99:99Z",
                "2026-11-24T11:58:00",
                "",
                None,
                [],
                {},
            ]
        )
        if field == "endsAt" and alert[field] in ("0001-01-01T00:00:00Z", None):
            alert[field] = "9999-12-31T23:59:59Z"
        return payload, True

    def garbage(self) -> tuple[Any, bool]:
        rng = self.rng
        choice = rng.choice(["bytes", "types", "missing", "array"])
        if choice == "bytes":
            return bytes(rng.randint(0, 255) for _ in range(rng.randint(1, 200))), True
        payload = self.payload(self.alert())
        if choice == "types":
            wrong = {
                "labels": [None, 1, [], "x", True, {"alertname": 1}],
                "annotations": [1, [], "x", True, {"a": None}],
                "status": [None, 1, "on", ""],
                "fingerprint": [None, 1, "", "a b", {}, "x" * 65],
            }
            key = rng.choice(sorted(wrong))
            payload["alerts"][0][key] = rng.choice(wrong[key])
        elif choice == "missing":
            del payload[rng.choice(["version", "alerts", "status"])]
        else:
            return [payload], True
        return payload, True


def _run_count() -> int:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    with create_session() as session:
        return int(session.scalar(select(func.count()).select_from(DagRun).where(DagRun.dag_id == TARGET_DAG)))


def _outbox_messages() -> list[dict[str, Any]]:
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from toilless.intake.store import outbox

    with create_session() as session:
        return [json.loads(row) for row in session.execute(select(outbox.c.message_json)).scalars()]


def test_hostile_deliveries_never_5xx_never_start_from_invalid_input_never_inject(intake: IntakeHarness) -> None:
    rng = random.Random(SEED)
    fuzzer = Fuzzer(rng)
    mutations: list[tuple[float, Callable[[], tuple[Any, bool]]]] = [
        (0.22, fuzzer.valid),
        (0.08, fuzzer.duplicate),
        (0.10, fuzzer.out_of_order),
        (0.08, fuzzer.deep),
        (0.08, fuzzer.huge_number),
        (0.10, fuzzer.bad_unicode),
        (0.12, fuzzer.oversized),
        (0.12, fuzzer.bad_time),
        (0.10, fuzzer.garbage),
    ]
    weights = [weight for weight, _ in mutations]
    statuses: dict[int, int] = {}
    resolved_first: set[tuple[str, str]] = set()
    fired: set[tuple[str, str]] = set()
    started = time.monotonic()

    for index in range(DELIVERIES):
        _, mutate = rng.choices(mutations, weights)[0]
        body, must_be_refused = mutate()
        runs_before = _run_count()

        response = intake.post_decided(body)

        code = response.status_code
        statuses[code] = statuses.get(code, 0) + 1
        context = f"delivery {index} ({mutate.__name__}): {code} {response.text[:300]}"
        assert code < 500, context
        if must_be_refused:
            assert 400 <= code < 500, context
        if code >= 400:
            assert _run_count() == runs_before, f"a refused delivery started a run: {context}"
            continue
        for alert, result in zip(body["alerts"], response.json()["results"], strict=True):
            identity = (alert["fingerprint"], alert["startsAt"])
            if alert["status"] == "resolved" and identity not in fired:
                resolved_first.add(identity)
            if alert["status"] == "firing":
                fired.add(identity)
                if identity in resolved_first:
                    assert result["status"] != "started", f"late firing after its resolved started a run: {context}"
        if index % 100 == 99:  # the outbox, as built (before fit_message on the way out), then as posted
            _check_messages(intake)

    _check_messages(intake)
    elapsed = time.monotonic() - started
    assert sum(statuses.values()) == DELIVERIES
    assert statuses.get(200, 0) > 100, statuses  # the valid share really was exercised
    assert sum(count for code, count in statuses.items() if 400 <= code < 500) > 500, statuses
    assert len(intake.slack_sink.messages()) > 50
    print(f"fuzz: {DELIVERIES} deliveries in {elapsed:.1f} s, answers {sorted(statuses.items())}")


def _check_messages(intake: IntakeHarness) -> None:
    for message in _outbox_messages():
        assert markup_problems(message, ALLOWED_HOSTS) == [], message
        assert limit_problems(message) == [], message
    posted_before = len(intake.slack_sink.messages())
    while intake.outbox_size():
        intake.deliver()
    for message in intake.slack_sink.messages()[posted_before:]:
        assert markup_problems(message, ALLOWED_HOSTS) == [], message
        assert limit_problems(message) == [], message
