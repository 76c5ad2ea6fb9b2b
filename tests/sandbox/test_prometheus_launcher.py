"""sandbox/prometheus.py: the one Prometheus/Alertmanager launcher (sandbox, drills, test fixtures, benchmarks)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from sandbox import prometheus
from sandbox.prometheus import AlertingStack, MetricsExporter, NotificationRecorder

pytestmark = pytest.mark.integration


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def _drill_targets(stack: AlertingStack) -> list[str]:
    found = prometheus.http_json(f"{stack.prometheus_url}/api/v1/targets?state=active")["data"]["activeTargets"]
    return [target["scrapeUrl"] for target in found if target["labels"].get("job") == "targets"]


def test_exporter_serves_values_or_collects_live_and_a_failing_collect_is_down() -> None:
    calls: list[int] = []

    def collect() -> dict[str, float]:
        calls.append(1)
        if len(calls) > 1:
            raise OSError("sandbox gone")
        return {'up_probe{target="a"}': 1.0}

    with MetricsExporter() as fixed, MetricsExporter(collect) as live:
        fixed.values["x_total"] = 3.0
        assert _get(f"{fixed.url}/metrics") == (200, "x_total 3.0\n")
        assert _get(f"{live.url}/metrics") == (200, 'up_probe{target="a"} 1.0\n')
        status, body = _get(f"{live.url}/metrics")
        assert status == 500
        assert "sandbox gone" in body


def test_recorder_keeps_bodies_and_appends_them_for_another_process(tmp_path: Path) -> None:
    jsonl = tmp_path / "notifications.jsonl"
    alert = {"status": "firing", "labels": {"alertname": "A"}, "fingerprint": "f", "startsAt": "2026-01-01T00:00:00Z"}
    body = {"status": "firing", "alerts": [alert, {**alert, "labels": {"alertname": "B"}}]}
    before = time.time()
    with NotificationRecorder(jsonl) as recorder:
        request = urllib.request.Request(recorder.url, data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200
        assert recorder.received("firing") == [body]
        assert [a for _, a in recorder.firing("A")] == [alert]
    read = prometheus.read_notifications(jsonl, since=before)
    assert [b for _, b in read] == [body]
    assert [a["labels"]["alertname"] for _, a in prometheus.firing(read, "B")] == ["B"]
    assert prometheus.read_notifications(jsonl, since=time.time() + 60) == []
    assert prometheus.read_notifications(tmp_path / "missing.jsonl") == []


@pytest.mark.timeout(180)
def test_stack_delivers_to_the_webhook_and_reloads_rules_and_targets_while_running(tmp_path: Path) -> None:
    """What the sandbox does once and each drill repeats: start with no rule, load one plus a target, reload."""
    with NotificationRecorder() as webhook, MetricsExporter() as drill_exporter:
        stack = AlertingStack(
            tmp_path / "stack",
            webhook_url=f"{webhook.url}/toilless/alertmanager",
            token="s3cret",
            lifecycle=True,
            notifications=tmp_path / "notifications.jsonl",
        ).start()
        try:
            drill_exporter.values['drill_fault{service="web"}'] = 1.0
            stack.reload(
                rules=[{"alert": "DrillFault", "expr": "drill_fault == 1", "for": "0s", "labels": {"severity": "x"}}],
                targets=[drill_exporter.address],
            )
            [body, *_] = webhook.wait_for("firing", timeout=90)
            [alert] = body["alerts"]
            assert alert["labels"]["alertname"] == "DrillFault"
            assert alert["labels"]["service"] == "web"  # honor_labels on the targets job
            assert alert["labels"]["instance"] == drill_exporter.address
            assert prometheus.firing(prometheus.read_notifications(tmp_path / "notifications.jsonl"), "DrillFault")
            # Unloading: no rule, no target (Prometheus's own view: its rules and active targets).
            stack.reload(rules=[], targets=[])
            deadline = time.monotonic() + 30
            while _drill_targets(stack) and time.monotonic() < deadline:
                time.sleep(0.5)
            assert _drill_targets(stack) == []
            rules = prometheus.http_json(f"{stack.prometheus_url}/api/v1/rules")["data"]["groups"]
            assert [rule for group in rules for rule in group["rules"]] == []
        finally:
            stack.stop()
    assert all(process.poll() is not None for process in stack.processes) or stack.processes == []
