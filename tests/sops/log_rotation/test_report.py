"""Planning (which log sets, which paths, which host queue), usage maths and the report texts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from toilless.sops.log_rotation import report, usage
from toilless.sops.log_rotation.paths import PathEscapeError
from toilless.sops.log_rotation.planning import build_plan, queue_key, select_log_sets
from toilless.sops.log_rotation.settings import LogRotationConfigError, parse_log_sets

NOW = datetime(2026, 11, 22, 4, 30, tzinfo=UTC)
CONFIG: dict[str, Any] = {
    "allowed_roots": ["/var/log/apps", "/mnt/logs"],
    "log_sets": {
        "app": {"root": "/var/log/apps", "globs": ["app.log"]},
        "orders": {"root": "/var/log/apps/orders", "globs": ["*.log"], "queue": "host-b", "channel": "ops"},
        "archive": {"root": "/mnt/logs", "globs": ["*.log"]},
    },
}


def plan(**overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "names": None,
        "extra_paths": None,
        "alert": None,
        "dry_run": False,
        "host_queues": ["host-b"],
        "state_dir": "/var/lib/toilless",
        "now_iso": NOW.isoformat(),
    }
    arguments.update(overrides)
    return build_plan(CONFIG, **arguments)


def test_plan_groups_log_sets_by_host_queue() -> None:
    result = plan()
    assert [item["log_set"]["name"] for item in result[queue_key(None)]] == ["app", "archive"]
    assert [item["log_set"]["name"] for item in result[queue_key("host-b")]] == ["orders"]
    assert result["summary"]["channels"] == {"app": "compliance", "orders": "ops", "archive": "compliance"}


def test_plan_routes_extra_paths_to_the_deepest_log_set() -> None:
    result = plan(extra_paths=["/var/log/apps/orders/extra-*.log", "/var/log/apps/x.log"])
    assert result[queue_key("host-b")][0]["extra_globs"] == ["/var/log/apps/orders/extra-*.log"]
    assert result[queue_key(None)][0]["extra_globs"] == ["/var/log/apps/x.log"]


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        pytest.param({"names": ["nope"]}, LogRotationConfigError, "unknown log set", id="unknown-log-set"),
        pytest.param({"extra_paths": ["/etc/shadow"]}, PathEscapeError, "outside the allowed roots", id="outside"),
        pytest.param({"extra_paths": ["/var/log/apps/../../etc/x"]}, PathEscapeError, "contains", id="dotdot"),
        pytest.param({"extra_paths": ["relative.log"]}, PathEscapeError, "must be absolute", id="relative"),
        pytest.param({"host_queues": []}, LogRotationConfigError, "not in host_queues", id="undeclared-queue"),
    ],
)
def test_bad_params_fail_the_plan(overrides: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        plan(**overrides)


@pytest.mark.parametrize(
    ("alert", "expected"),
    [
        pytest.param({"alertname": "LogMountLowStorage", "labels": {"log_set": "orders"}}, ["orders"], id="label"),
        pytest.param(
            {"alertname": "LogMountLowStorage", "labels": {"mountpoint": "/mnt/logs"}}, ["archive"], id="mount"
        ),
        pytest.param({"alertname": "X", "labels": {"mountpoint": "/srv"}}, [], id="none"),
        pytest.param(
            {"alertname": "LogMountLowStorage", "labels": {"mountpoint": "/../../etc"}}, [], id="traversal-matches-none"
        ),
        pytest.param({"alertname": "LogMountLowStorage", "labels": {"log_set": "nope"}}, [], id="unknown-log-set"),
    ],
)
def test_alert_labels_narrow_the_run(alert: dict[str, Any], expected: list[str]) -> None:
    chosen, why = select_log_sets(parse_log_sets(CONFIG), None, alert)
    assert [item.name for item in chosen] == expected
    assert alert["alertname"] in why
    if not expected:  # never "all" when the alert points at nothing configured
        assert "no matching target" in why


def test_growth_per_day_from_history(tmp_path: Path) -> None:
    history = tmp_path / "history.json"
    measured = usage.MountUsage(mount="/var/log", total_bytes=1000, used_bytes=500, available_bytes=400)
    assert usage.record_usage(history, measured, NOW - timedelta(days=2))["bytes_per_day"] is None
    grown = usage.record_usage(history, usage.MountUsage("/var/log", 1000, 700, 200), NOW)
    assert grown["bytes_per_day"] == 100
    # A second sample minutes later (another log set on the same mount) is no trend.
    assert (
        usage.growth([[NOW.isoformat(), 700], [(NOW + timedelta(minutes=5)).isoformat(), 900]], NOW)["bytes_per_day"]
        is None
    )
    assert measured.percent_used == pytest.approx(100 * 500 / 900)


def test_largest_files_and_directories(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "big.log").write_bytes(b"x" * 5000)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "small.log").write_bytes(b"x" * 10)
    (tmp_path / "link").symlink_to("/etc", target_is_directory=True)
    found = usage.largest(str(tmp_path), count=2)
    assert found["files"][0] == {"path": str(tmp_path / "a" / "big.log"), "bytes": 5000}
    assert [item["path"] for item in found["directories"]] == [str(tmp_path), str(tmp_path / "a")]


def _measured(status: str, percent: float, channel: str = "compliance") -> dict[str, Any]:
    used = int(percent * 10)
    return {
        "log_set": f"set-{status}",
        "host": "web-1",
        "usage": {
            "mount": "/var/log",
            "total_bytes": 1000,
            "used_bytes": used,
            "available_bytes": 1000 - used,
            "percent_used": percent,
        },
        "growth": {"bytes_per_day": 2 * 1024**3, "since": "2026-11-20T04:30:00+00:00"},
        "status": status,
        "warning_percent": 70,
        "critical_percent": 90,
        "channel": channel,
        "largest": {"files": [{"path": "/var/log/app.log", "bytes": 900}], "directories": []},
    }


def test_low_storage_goes_to_the_channel_and_critical_also_to_urgent() -> None:
    assert report.low_storage_messages([_measured("ok", 50)]) == {}
    warning = report.low_storage_messages([_measured("warning", 75)])
    assert list(warning) == ["compliance"]
    assert "75.0% used" in warning["compliance"]["lines"][0]
    assert "grows 2.0 GiB/day" in warning["compliance"]["lines"][0]
    assert "/var/log/app.log" in warning["compliance"]["lines"][1]
    critical = report.low_storage_messages([_measured("critical", 95, channel="ops")])
    assert sorted(critical) == ["ops", "urgent"]
    assert critical["urgent"]["status"] == "critical"


def test_rotation_lines_say_what_was_done_and_freed() -> None:
    result = {
        "rotation": {
            "log_set": "app",
            "dry_run": False,
            "mode": "rename",
            "bytes_before": 10 * 1024**2,
            "bytes_after": 2 * 1024**2,
            "rotated": [{"live": "/l/app.log", "rotated": "/l/app.log.x", "bytes": 8 * 1024**2, "mode": "rename"}],
            "compressed": [
                {
                    "source": "/l/app.log.x",
                    "archive": "/l/app.log.x.zst",
                    "source_bytes": 8 * 1024**2,
                    "archive_bytes": 1024**2,
                }
            ],
            "pending": [],
            "skipped": [{"path": "/l/evil.log", "reason": "is a symlink (never followed)"}],
            "removed_tmp": [],
            "recovered": [],
            "errors": [],
        },
        "retention": {
            "deleted": [{"path": "/l/old.zst", "bytes": 1024**2, "reason": "older than 30 days"}],
            "retention": "30 days",
        },
    }
    lines = report.log_set_lines(result)
    assert lines[0].startswith("*app*: 1 file(s) rotated (8.0 MiB, rename), 1 compressed (8.0 MiB → 1.0 MiB)")
    assert "10.0 MiB before → 1.0 MiB after (freed 9.0 MiB)" in lines[1]
    assert any("deleted `/l/old.zst`" in line for line in lines)
    assert any("skipped `/l/evil.log`" in line for line in lines)


@pytest.mark.parametrize(
    ("count", "text"),
    [
        pytest.param(0, "0 B", id="zero"),
        pytest.param(1536, "1.5 KiB", id="kib"),
        pytest.param(-2048, "-2.0 KiB", id="neg"),
    ],
)
def test_human_bytes(count: int, text: str) -> None:
    assert report.human_bytes(count) == text


def test_growth_survives_frequent_runs(tmp_path: Path) -> None:
    """Issue 12 #14: alert-triggered runs minutes apart pushed every older sample out of the bounded history, so
    growth stayed "unknown" exactly while the mount was filling."""
    history = tmp_path / "history.json"
    usage.record_usage(history, usage.MountUsage("/var/log", 10**12, 500 * 10**9, 400 * 10**9), NOW - timedelta(days=1))
    grown: dict[str, Any] = {}
    for minute in range(150):
        moment = NOW - timedelta(minutes=150 - minute)
        grown = usage.record_usage(history, usage.MountUsage("/var/log", 10**12, 510 * 10**9, 390 * 10**9), moment)
    assert grown["bytes_per_day"] is not None
    assert grown["bytes_per_day"] == pytest.approx(10 * 10**9, rel=0.01)
    # Still bounded.
    assert len(usage.read_history(history)["/var/log"]) <= usage.HISTORY_SAMPLES


def test_report_never_calls_a_later_sample_the_first_measurement(tmp_path: Path) -> None:
    history = tmp_path / "history.json"
    first = usage.record_usage(history, usage.MountUsage("/var/log", 1000, 500, 400), NOW - timedelta(minutes=5))
    second = usage.record_usage(history, usage.MountUsage("/var/log", 1000, 600, 300), NOW)
    measured = {**_measured("ok", 60), "growth": first}
    assert "first measurement" in report.usage_line(measured)
    line = report.usage_line({**measured, "growth": second})
    assert "first measurement" not in line
    assert "+100 B in 5 min" in line


def test_outside_text_in_the_report_is_escaped_and_bounded() -> None:
    hostile = "/l/<!channel> `x` <https://evil.example|click>.log"
    result = {
        "rotation": {
            "log_set": "app",
            "dry_run": False,
            "mode": "rename",
            "bytes_before": 10,
            "bytes_after": 10,
            "rotated": [],
            "compressed": [],
            "pending": [],
            "skipped": [{"path": f"{hostile}{i}", "reason": "is a symlink <!here>"} for i in range(50)],
            "removed_tmp": [],
            "recovered": [],
            "errors": [f"rotating {hostile}: [Errno 28] No space left <!everyone>"],
        },
        "retention": {"deleted": [], "retention": "30 days"},
    }
    text = "\n".join(report.log_set_lines(result))
    for control in ("<!channel>", "<!here>", "<!everyone>", "<https://evil.example|click>"):
        assert control not in text
    assert "&lt;!channel&gt;" in text
    skipped = [line for line in report.log_set_lines(result) if "skipped" in line]
    assert len(skipped) == report.MAX_ITEMS
    assert "… and 30 more" in text
