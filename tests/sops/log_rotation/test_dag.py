"""The log_rotation DAG end to end (dag.test) on real files in a temp root, reporting to the Slack sink."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sandbox.slack_sink import SlackSink
from tests.incidents.conftest import alert as incident_alert
from tests.incidents.conftest import incident_db  # noqa: F401 - the fixture
from toilless.sops.log_rotation import naming

pytestmark = pytest.mark.integration


def snapshot(directory: Path) -> dict[str, tuple[int, int, int, str]]:
    result = {}
    for entry in sorted(directory.rglob("*")):
        if entry.is_file() and not entry.is_symlink():
            info = entry.stat()
            digest = hashlib.sha256(entry.read_bytes()).hexdigest()
            result[str(entry)] = (info.st_ino, info.st_size, info.st_mtime_ns, digest)
    return result


@pytest.fixture
def log_root(tmp_path: Path, set_variable: Callable[[str, Any], None]) -> Callable[..., Path]:
    """A temp log root with app.log and order_processing.log; the Variable points both log sets at it."""
    root = tmp_path / "logs"
    root.mkdir()
    (root / "app.log").write_bytes(b"".join(f"2026-11-22 INFO GET /orders/{i} 200\n".encode() for i in range(20_000)))
    (root / "order_processing.log").write_bytes(
        b"".join(f"Processing Order {i}\nOrder Processed\n".encode() for i in range(10_000))
    )
    # Three old archives of ours (19-21 days old, within the default 30 days: only max_archives removes them),
    # and a foreign file retention must never touch. Relative to today: the run rotates with today's stamp.
    for name in old_archives():
        (root / name).write_bytes(b"\x28\xb5\x2f\xfd" + b"0" * 1000)
    (root / "app.log.1.gz").write_bytes(b"not ours")

    def configure(**overrides: Any) -> Path:
        common = {"min_size": 1, "reopen": {"pid_file": None, "timeout_seconds": 1}, "retention": {"max_archives": 2}}
        set_variable(
            "toilless_log_rotation",
            {
                "allowed_roots": [str(root)],
                "state_dir": str(tmp_path / "state"),
                "respect_maintenance_window": False,
                "log_sets": {
                    "app": {"root": str(root), **common, **overrides},
                    "order_processing": {"root": str(root), "mode": "copytruncate", **common, **overrides},
                },
            },
        )
        return root

    return configure


def old_archives() -> list[str]:
    """Names for three archives of ours, oldest first, rotated 21, 20 and 19 days before now."""
    now = datetime.now(UTC)
    return [f"app.log.{naming.stamp(now - timedelta(days=days))}.1.zst" for days in (21, 20, 19)]


def archives_of_app(root: Path) -> list[str]:
    """Our app.log archives in the directory now, oldest first."""
    return sorted(
        entry.name
        for entry in root.iterdir()
        if (parsed := naming.parse_rotated(entry.name)) and parsed.is_archive and parsed.live == "app.log"
    )


def texts(sink: SlackSink, channel: str) -> list[str]:
    return [message["text"] for message in sink.messages(channel)]


def test_dry_run_reports_exactly_what_would_happen_and_touches_nothing(
    run_dag: Callable[..., Any], slack_sink: SlackSink, log_root: Callable[..., Path]
) -> None:
    # A critical threshold below the real usage: the low-storage path to urgent runs too.
    root = log_root(warning_percent=1, critical_percent=2)
    before = snapshot(root)
    run = run_dag("log_rotation", run_conf={"dry_run": True})
    assert run.state == "success"
    assert snapshot(root) == before
    [report] = [text for text in texts(slack_sink, "compliance") if "Log rotation" in text]
    assert "dry run: nothing was changed" in report
    assert f"would rotate `{root / 'app.log'}` → `{root}/app.log." in report
    assert f"would rotate `{root / 'order_processing.log'}`" in report
    # max_archives 2 and one new archive coming: of the three old ones, the two oldest would go.
    oldest, older, newest_old = archives_of_app(root)
    assert f"would delete `{root / oldest}`" in report
    assert f"would delete `{root / older}`" in report
    assert newest_old not in report
    assert "app.log.1.gz" not in report
    [urgent] = texts(slack_sink, "urgent")
    assert "Low storage on log mounts" in urgent
    assert "CRITICAL" in urgent


def test_rotation_run_reports_what_was_freed_and_warns_on_low_storage(
    run_dag: Callable[..., Any], slack_sink: SlackSink, log_root: Callable[..., Path]
) -> None:
    root = log_root(warning_percent=1, critical_percent=100)
    app_data = (root / "app.log").read_bytes()
    oldest, older, newest_old = archives_of_app(root)
    run = run_dag("log_rotation", run_conf={"log_sets": ["app", "order_processing"]})
    assert run.state == "success"
    names = sorted(entry.name for entry in root.iterdir())
    archives = [name for name in names if (parsed := naming.parse_rotated(name)) and parsed.is_archive]
    assert "app.log.1.gz" in names  # not ours: untouched
    assert oldest not in names  # beyond retention (2 newest kept)
    assert older not in names
    assert len([name for name in archives if name.startswith("app.log.")]) == 2
    assert len([name for name in archives if name.startswith("order_processing.log.")]) == 1
    assert (root / "app.log").stat().st_size == 0
    # The archive this run made: the newest of ours, newer than every old one (whatever today's date is).
    [newest] = [name for name in archives if name.startswith("app.log.") and name > newest_old]
    import zstandard

    assert zstandard.ZstdDecompressor().decompressobj().decompress((root / newest).read_bytes()) == app_data
    compliance = texts(slack_sink, "compliance")
    [report] = [text for text in compliance if text.startswith(":") and "Log rotation" in text]
    assert "*app*: 1 file(s) rotated" in report
    assert "freed" in report
    assert "before →" in report
    assert "copytruncate" in report
    [warning] = [text for text in compliance if "Low storage on log mounts" in text]
    assert "WARNING" in warning
    assert "largest files" in warning
    assert texts(slack_sink, "urgent") == []


def test_a_param_path_outside_the_roots_fails_before_touching_anything(
    run_dag: Callable[..., Any], slack_sink: SlackSink, log_root: Callable[..., Path]
) -> None:
    root = log_root()
    before = snapshot(root)
    run = run_dag("log_rotation", run_conf={"paths": ["/etc/passwd"]})
    assert run.state == "failed"
    assert snapshot(root) == before
    failures = [text for message in slack_sink.messages() if "plan_rotation" in (text := message["text"])]
    assert failures
    assert "outside the allowed roots" in failures[0]


def test_an_alerts_rotation_is_on_its_incident_timeline(
    run_dag: Callable[..., Any],
    slack_sink: SlackSink,
    log_root: Callable[..., Path],
    incident_db: Any,  # noqa: F811
) -> None:
    """What the run changed on disk is on the alert's incident timeline (issue 21's drill found it missing):
    rotation and retention each recorded with counts; a dry run records no action."""
    from toilless.incidents import events as ev
    from toilless.incidents import store

    root = log_root(warning_percent=1, critical_percent=100)
    firing = incident_alert(fingerprint="10a9707a7e01", alertname="LogMountLowStorage", mountpoint=str(root))
    dry = incident_alert(fingerprint="10a9707a7e02", alertname="LogMountLowStorage", mountpoint=str(root))
    assert run_dag("log_rotation", run_conf={"alert": dry, "dry_run": True}).state == "success"
    assert [e for e in store.timeline(incident_db, ev.incident_of_alert(dry)) if e["kind"] == ev.ACTION] == []

    assert run_dag("log_rotation", run_conf={"alert": firing}).state == "success"
    actions = {
        e["data"]["action"] + " / " + e["data"]["target"]: e
        for e in store.timeline(incident_db, ev.incident_of_alert(firing))
        if e["kind"] == ev.ACTION
    }
    rotated = actions["rotate and compress logs / log set app"]
    assert rotated["data"]["result"] == "done"
    assert rotated["data"]["detail"] == "1 rotated, 1 compressed"
    retained = actions["delete archives beyond retention / log set app"]
    assert retained["data"]["detail"] == "2 deleted"  # max_archives 2: the two oldest of three old + one new
    assert "rotate and compress logs / log set order_processing" in actions
    # Every action passed the action gate first (the drills' "outside policy" check).
    verdicts = [
        e
        for e in store.timeline(incident_db, ev.incident_of_alert(firing))
        if e["kind"] == ev.GATE_VERDICT and e["data"]["allowed"]
    ]
    for action in actions.values():
        assert any(v["at"] <= action["at"] and v["data"]["target"] == action["data"]["target"] for v in verdicts)

    # The alert keeps firing and a second run starts for the same incident: the gate holds it, nothing changes.
    (root / "app.log").write_bytes(b"still filling\n" * 1000)
    before = snapshot(root)
    assert run_dag("log_rotation", run_conf={"alert": firing}).state == "success"
    assert snapshot(root) == before
    timeline = store.timeline(incident_db, ev.incident_of_alert(firing))
    assert len([e for e in timeline if e["kind"] == ev.ACTION]) == len(actions)
    held = [e for e in timeline if e["kind"] == ev.GATE_VERDICT and e["data"]["check"] == "once_per_incident"]
    assert any(e["data"]["target"] == "log set app" for e in held)
    assert any(
        "held by the action gate: already acted on log set app" in text for text in texts(slack_sink, "compliance")
    )


def test_a_maintenance_window_that_opened_after_planning_holds_every_log_set(
    run_dag: Callable[..., Any], slack_sink: SlackSink, log_root: Callable[..., Path], set_variable: Callable[..., Any]
) -> None:
    """The window is the gate's, read by each log set's task when it acts, from the configuration of that moment."""
    root = log_root()
    settings = json.loads(os.environ["AIRFLOW_VAR_TOILLESS_LOG_ROTATION"])
    set_variable("toilless_log_rotation", {**settings, "respect_maintenance_window": True})
    if datetime.now(UTC).strftime("%H:%M") >= "23:58":  # the last minutes of the day are outside the window below
        time.sleep(180)
    every_day = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    window = {"days": every_day, "start": "00:00", "end": "23:59", "timezone": "UTC"}
    set_variable("toilless_toilless", {"maintenance_window": window})
    before = snapshot(root)

    run = run_dag("log_rotation", run_conf={"log_sets": ["app", "order_processing"]})

    assert run.state == "success"
    assert snapshot(root) == before
    [report] = [text for text in texts(slack_sink, "compliance") if "Log rotation" in text]
    assert report.count("rotation not done, held by the action gate: inside the maintenance window") == 2
    assert "would be rotated" in report
