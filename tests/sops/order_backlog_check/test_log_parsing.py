"""Pure logic of the order-processor backlog SOP: log reading, capacity, verdicts, restart decisions, settings."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import zstandard

from sandbox.orders import processor_log, recovery_lines, write_log
from toilless.common.config import read_defaults
from toilless.order_backlog_messages import developers_message, ops_message, outcome_report
from toilless.order_processor import (
    CRASHED_SILENT,
    ERRORS,
    HEALTHY,
    OVERLOADED,
    STUCK,
    Backlog,
    Capacity,
    LogAccessError,
    RunSummary,
    SettingsError,
    Thresholds,
    Verdict,
    assess_capacity,
    classify,
    decide_restart,
    latest_run_lines,
    parse_timestamp,
    read_latest_run,
    recovery_seen,
    resolve_log_path,
    resolve_settings,
    restart_already_done,
    rotated_files,
    summarize_run,
)

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def _diagnose(scenario: str, outstanding: int, oldest_minutes: float = 30.0) -> tuple[Verdict, RunSummary]:
    lines, found = latest_run_lines([processor_log(scenario, now=NOW)])
    summary = summarize_run(lines, found_startup=found)
    capacity = Capacity()
    thresholds = Thresholds()
    backlog = Backlog(outstanding=outstanding, oldest_created_at=NOW - timedelta(minutes=oldest_minutes))
    assessment = assess_capacity(capacity, outstanding, summary, thresholds.min_orders_for_throughput)
    return classify(summary, backlog, assessment, thresholds, capacity, NOW), summary


# -- parsing ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param(
            "2026-11-23 09:00:01,100 INFO Startup...", datetime(2026, 11, 23, 9, 0, 1, 100000, UTC), id="comma"
        ),
        pytest.param("2026-11-23T09:00:01Z Startup...", datetime(2026, 11, 23, 9, 0, 1, tzinfo=UTC), id="iso-z"),
        pytest.param(
            "[2026-11-23 10:00:01+01:00] Startup...", datetime(2026, 11, 23, 9, 0, 1, tzinfo=UTC), id="offset"
        ),
        pytest.param("Startup...", None, id="none"),
    ],
)
def test_parse_timestamp(line: str, expected: datetime | None) -> None:
    assert parse_timestamp(line) == expected


def test_naive_timestamps_use_the_configured_timezone() -> None:
    moment = parse_timestamp("2026-11-23 10:00:00 Startup...", "Europe/Berlin")
    assert moment is not None
    assert moment.astimezone(UTC) == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_reading_starts_at_the_latest_startup_across_files() -> None:
    older = ["a Startup...", "b Processing Order 1", "c Order Processed", "d Startup...", "e Processing Order 2"]
    newer = ["f Order Processed", "g Processing Order 3"]
    lines, found = latest_run_lines([newer, older])
    assert found
    assert lines == ["d Startup...", "e Processing Order 2", "f Order Processed", "g Processing Order 3"]


def test_without_startup_everything_is_kept() -> None:
    lines, found = latest_run_lines([["x Processing Order 1"], ["y Order Processed"]])
    assert not found
    assert lines == ["y Order Processed", "x Processing Order 1"]


def test_stuck_error_is_attributed_to_the_open_order() -> None:
    lines = [
        "2026-11-23 09:00:00 INFO Startup...",
        "2026-11-23 09:00:01 INFO Processing Order 4",
        "2026-11-23 09:00:13 INFO Order Processed",
        "2026-11-23 09:00:14 INFO Processing Order 5",
        *[f"2026-11-23 09:0{minute}:00 ERROR Error Processing Order. Error #12" for minute in range(1, 6)],
    ]
    summary = summarize_run(lines, found_startup=True)
    assert (summary.tail_error_order, summary.tail_error_code, summary.tail_error_repeats) == ("5", "12", 5)
    assert summary.orders_processed == 1
    assert summary.errors == {"5/12": 5}
    assert summary.last_progress_at == datetime(2026, 11, 23, 9, 0, 14, tzinfo=UTC)
    assert not summary.tail_errors_mixed


def test_explicit_order_ids_win() -> None:
    lines = [
        "2026-11-23 09:00:00 Startup...",
        "2026-11-23 09:00:01 Processing Order 7",
        "2026-11-23 09:00:02 Processing Order 8",
        "2026-11-23 09:00:03 Error Processing Order 7. Error #3",
        "2026-11-23 09:00:04 Error Processing Order 7. Error #3",
    ]
    summary = summarize_run(lines, found_startup=True)
    assert summary.tail_error_order == "7"
    assert summary.tail_error_code == "3"


def test_progress_clears_the_tail() -> None:
    lines = [
        "2026-11-23 09:00:00 Startup...",
        "2026-11-23 09:00:01 Processing Order 1",
        "2026-11-23 09:00:02 Error Processing Order. Error #12",
        "2026-11-23 09:00:03 Error Processing Order. Error #12",
        "2026-11-23 09:00:04 Error Processing Order. Error #12",
        "2026-11-23 09:00:05 Order Processed",
    ]
    summary = summarize_run(lines, found_startup=True)
    assert summary.tail_error_repeats == 0
    assert summary.error_count == 3


def test_summary_round_trips_through_json() -> None:
    lines, _found = latest_run_lines([processor_log("stuck", now=NOW)])
    summary = summarize_run(lines, found_startup=True)
    assert RunSummary.from_dict(summary.as_dict()) == summary


# -- rotated files ---------------------------------------------------------------------------------------------
def test_rotated_files_newest_first(tmp_path: Path) -> None:
    current = write_log(tmp_path / "order_processing.log", ["x"])
    for name in [
        "order_processing.log.2.gz",
        "order_processing.log.1",
        "order_processing.20261120T010000.1.log.zst",
        "order_processing.20261121T010000.2.log.zst",
        "order_processing.20261121T010000.1.log.zst",
        "other.log.1",
    ]:
        (tmp_path / name).write_bytes(b"")
    assert [path.name for path in rotated_files(current)] == [
        "order_processing.log",
        "order_processing.log.1",
        "order_processing.log.2.gz",
        "order_processing.20261121T010000.2.log.zst",
        "order_processing.20261121T010000.1.log.zst",
        "order_processing.20261120T010000.1.log.zst",
    ]


def test_log_rotation_dag_archives_are_found_in_order(tmp_path: Path) -> None:
    """Names the log_rotation DAG gives (toilless.logrotation.naming): <live>.<stamp>.<seq>[.zst|.gz]."""
    from toilless.logrotation.naming import RotatedName

    current = write_log(tmp_path / "order_processing.log", ["x"])
    names = [
        RotatedName(stamp="20261122T033000Z", seq=1, live=current.name, ext="").pending_name,
        RotatedName(stamp="20261121T033000Z", seq=2, live=current.name, ext="").archive_name("zstd"),
        RotatedName(stamp="20261121T033000Z", seq=1, live=current.name, ext="").archive_name("gzip"),
    ]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    assert [path.name for path in rotated_files(current)] == [current.name, *names]


@pytest.mark.parametrize("archive", [pytest.param("plain", id="dot1"), "gz", "zst"])
def test_latest_run_spans_a_rotation(tmp_path: Path, archive: str) -> None:
    older = "2026-11-23 09:00:00 INFO Startup...\n2026-11-23 09:00:01 INFO Processing Order 4\n"
    newer = "2026-11-23 09:00:13 INFO Order Processed\n2026-11-23 09:00:14 INFO All Orders processed.\n"
    (tmp_path / "order_processing.log").write_text(newer)
    if archive == "plain":
        (tmp_path / "order_processing.log.1").write_text(older)
    elif archive == "gz":
        (tmp_path / "order_processing.log.1.gz").write_bytes(gzip.compress(older.encode()))
    else:
        (tmp_path / "order_processing.20261123T090500.1.log.zst").write_bytes(
            zstandard.ZstdCompressor().compress(older.encode())
        )
    lines, found, files, _ = read_latest_run(tmp_path / "order_processing.log", allowed_roots=[str(tmp_path)])
    assert found
    assert len(files) == 2
    summary = summarize_run(lines, found_startup=found)
    assert summary.orders_processed == 1
    assert summary.finished
    assert summary.started_at == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_missing_log_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(LogAccessError, match="does not exist"):
        read_latest_run(tmp_path / "order_processing.log", allowed_roots=[str(tmp_path)])


# -- log paths -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("/etc/passwd", id="outside-root"),
        pytest.param("{root}/../../etc/passwd", id="dot-dot"),
        pytest.param("relative/order_processing.log", id="relative"),
        pytest.param("{root}/x.log'; DROP TABLE orders; --\n", id="sql-and-newline"),
        pytest.param("{root}/link/passwd", id="symlink-escape"),
        pytest.param("", id="empty"),
    ],
)
def test_log_path_outside_the_roots_is_refused(tmp_path: Path, raw: str) -> None:
    root = tmp_path / "logs"
    root.mkdir()
    (root / "link").symlink_to("/etc")
    with pytest.raises(LogAccessError):
        resolve_log_path(raw.format(root=root), [str(root)])


def test_log_path_inside_a_root_is_accepted(tmp_path: Path) -> None:
    assert resolve_log_path(f"{tmp_path}/a/../order_processing.log", [str(tmp_path)]) == (
        tmp_path / "order_processing.log"
    )


# -- capacity --------------------------------------------------------------------------------------------------
def test_capacity_from_the_sop_defaults() -> None:
    capacity = Capacity.from_config(read_defaults("order_backlog_check")["processor"])
    assert capacity.slots == 8
    assert capacity.per_run(15) == 1920
    assert capacity.per_run(10) == 2880


@pytest.mark.parametrize(
    ("outstanding", "over", "runs", "interval", "processes"),
    [
        pytest.param(1000, False, 1, 60, 2, id="within"),
        pytest.param(5000, True, 3, 20, 6, id="three-runs"),
        pytest.param(100_000, True, 53, 5, 105, id="floor-at-min-interval"),
    ],
)
def test_capacity_suggestion(outstanding: int, over: bool, runs: int, interval: int, processes: int) -> None:
    assessment = assess_capacity(Capacity(), outstanding, None)
    assert assessment.seconds_per_order_source == "configured (worst case)"
    assert assessment.capacity_per_run == 1920
    assert (assessment.over_capacity, assessment.runs_needed) == (over, runs)
    assert assessment.suggested_interval_minutes == interval
    assert assessment.suggested_processes == processes


def test_observed_pace_is_used_but_not_below_best_case() -> None:
    start = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    summary = RunSummary(
        found_startup=True,
        orders_processed=80,
        first_processing_at=start,
        last_processed_at=start + timedelta(seconds=200),  # 80 orders in 200 s on 8 slots = 20 s/order
    )
    assessment = assess_capacity(Capacity(), 100, summary)
    assert assessment.seconds_per_order_source == "observed"
    assert assessment.seconds_per_order == 20
    fast = RunSummary(found_startup=True, orders_processed=80, first_processing_at=start, last_processed_at=start)
    assert assess_capacity(Capacity(), 100, fast).seconds_per_order == 15  # no elapsed time: configured


@pytest.mark.parametrize(
    "config",
    [
        pytest.param({"processes": 0}, id="no-processes"),
        pytest.param({"seconds_per_order_min": 20}, id="min-above-max"),
        pytest.param({"run_interval_minutes": "1; DROP TABLE orders"}, id="sql-text"),
    ],
)
def test_bad_capacity_settings_are_refused(config: dict[str, object]) -> None:
    base = read_defaults("order_backlog_check")["processor"]
    with pytest.raises(ValueError):
        Capacity.from_config({**base, **config})


# -- verdicts --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("scenario", "outstanding", "oldest", "expected"),
    [
        pytest.param("healthy", 40, 30, HEALTHY, id="healthy"),
        pytest.param("stuck", 40, 30, STUCK, id="stuck"),
        pytest.param("stuck", 50_000, 600, STUCK, id="stuck-beats-overloaded"),
        pytest.param("crashed_silent", 300, 200, CRASHED_SILENT, id="silent"),
        pytest.param("overloaded", 5000, 90, OVERLOADED, id="over-capacity"),
        pytest.param("healthy", 1500, 300, OVERLOADED, id="too-old"),
        pytest.param("errors", 40, 30, ERRORS, id="errors-while-progressing"),
    ],
)
def test_verdicts(scenario: str, outstanding: int, oldest: float, expected: str) -> None:
    verdict, _ = _diagnose(scenario, outstanding, oldest)
    assert verdict.verdict == expected, verdict.reasons
    assert verdict.reasons


def test_stuck_verdict_carries_the_evidence() -> None:
    verdict, summary = _diagnose("stuck", 40)
    assert verdict.stuck_order == "11"
    assert verdict.error_code == "12"
    assert verdict.error_repeats >= 3
    assert verdict.restartable
    assert verdict.incident_key == "stuck:order-11:error-12"
    assert any("Error #12" in line for line in summary.excerpt)


def test_finished_idle_processor_with_nothing_to_do_is_not_silent() -> None:
    lines = ["2026-11-23 06:00:00 Startup...", "2026-11-23 06:00:01 All Orders processed."]
    summary = summarize_run(lines, found_startup=True)
    backlog = Backlog(outstanding=0, oldest_created_at=None)
    assessment = assess_capacity(Capacity(), 0, summary)
    verdict = classify(summary, backlog, assessment, Thresholds(), Capacity(), NOW)
    assert verdict.verdict == HEALTHY


def test_empty_log_is_silent() -> None:
    summary = summarize_run([], found_startup=False)
    backlog = Backlog(outstanding=10, oldest_created_at=NOW)
    verdict = classify(summary, backlog, assess_capacity(Capacity(), 10, summary), Thresholds(), Capacity(), NOW)
    assert verdict.verdict == CRASHED_SILENT
    assert verdict.incident_key == "silent:run-never"


# -- restart decisions -----------------------------------------------------------------------------------------
STUCK_VERDICT = Verdict(STUCK, ["x"], incident_key="stuck:order-5:error-12", stuck_order="5", error_code="12")


def _decide(**overrides: object) -> object:
    arguments: dict[str, object] = {
        "method": "kubernetes",
        "allow_restart": True,
        "marker": {},
        "policy_allowed": True,
        "policy_reason": "inside business hours",
        "policy_allowed_from": None,
        "now": NOW,
        "memory_hours": 24.0,
    }
    arguments.update(overrides)
    verdict = arguments.pop("verdict", STUCK_VERDICT)
    return decide_restart(verdict, **arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "act", "fragment"),
    [
        pytest.param({}, True, "restarting", id="allowed"),
        pytest.param({"verdict": Verdict(OVERLOADED, ["x"], None)}, False, "not cured", id="overloaded"),
        pytest.param({"method": "none"}, False, "switched off", id="method-none"),
        pytest.param({"allow_restart": False}, False, "allow_restart", id="param-off"),
        pytest.param(
            {"policy_allowed": False, "policy_reason": "outside business hours"}, False, "outside", id="policy"
        ),
        pytest.param(
            {"marker": {"incident": "stuck:order-5:error-12", "restarted_at": (NOW - timedelta(hours=1)).isoformat()}},
            False,
            "already restarted",
            id="same-incident",
        ),
        pytest.param(
            {"marker": {"incident": "stuck:order-5:error-12", "restarted_at": (NOW - timedelta(hours=30)).isoformat()}},
            True,
            "restarting",
            id="same-incident-long-ago",
        ),
        pytest.param(
            {"marker": {"incident": "stuck:order-4:error-12", "restarted_at": NOW.isoformat()}},
            True,
            "restarting",
            id="other-incident",
        ),
        pytest.param(
            {"marker": {"incident": "stuck:order-5:error-12", "restarted_at": NOW.isoformat(), "state": "failed"}},
            True,
            "restarting",
            id="failed-command-may-retry",
        ),
    ],
)
def test_decide_restart(overrides: dict[str, object], act: bool, fragment: str) -> None:
    decision = _decide(**overrides)
    assert decision.act is act  # type: ignore[attr-defined]
    assert fragment in decision.reason  # type: ignore[attr-defined]


def test_undatable_marker_for_the_incident_counts_as_done() -> None:
    assert restart_already_done({"incident": "k", "restarted_at": "garbage"}, "k", NOW, 24)


def test_recovery_needs_a_new_run_progress_and_a_falling_backlog() -> None:
    restarted = NOW - timedelta(minutes=2)
    old_run = summarize_run(latest_run_lines([processor_log("stuck", now=NOW)])[0], found_startup=True)
    assert not recovery_seen(old_run, 10, restarted_at=restarted, baseline_outstanding=40)[0]
    new_run = summarize_run(recovery_lines(start=NOW - timedelta(minutes=1), first_order=11), found_startup=True)
    ok, detail = recovery_seen(new_run, 35, restarted_at=restarted, baseline_outstanding=40)
    assert ok
    assert "40 -> 35" in detail
    assert not recovery_seen(new_run, 40, restarted_at=restarted, baseline_outstanding=40)[0]


# -- settings --------------------------------------------------------------------------------------------------
def _settings(params: dict[str, object], tmp_path: Path) -> dict[str, object]:
    config = read_defaults("order_backlog_check")
    config["log"]["allowed_roots"] = [str(tmp_path)]
    config["log"]["path"] = str(tmp_path / "order_processing.log")
    return resolve_settings(config, read_defaults("toilless"), params)


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"outstanding_threshold": "1000; DROP TABLE orders"}, id="sql-in-threshold"),
        pytest.param({"outstanding_threshold": True}, id="bool-threshold"),
        pytest.param({"oldest_order_age_minutes": 0}, id="zero-age"),
        pytest.param({"stuck_error_repeats": 1}, id="one-repeat"),
        pytest.param({"log_path": "/etc/passwd"}, id="path-outside"),
        pytest.param({"log_path": "/var/log/orders/x.log'; DROP TABLE orders;--"}, id="sql-in-path"),
        pytest.param({"business_hours_timezone": "Mars/Olympus"}, id="bad-timezone"),
        pytest.param({"business_hours_start": "9am"}, id="bad-clock"),
    ],
)
def test_bad_params_are_refused(params: dict[str, object], tmp_path: Path) -> None:
    with pytest.raises(SettingsError):
        _settings(params, tmp_path)


def test_params_override_config(tmp_path: Path) -> None:
    settings = _settings(
        {
            "outstanding_threshold": 50,
            "business_hours_start": "10:00",
            "log_path": str(tmp_path / "other.log"),
            "dry_run": True,
        },
        tmp_path,
    )
    assert settings["thresholds"]["outstanding_orders"] == 50  # type: ignore[index]
    # The run's narrower hours apply on top of the configured ones, which stay as configured.
    assert settings["run_business_hours"]["start"] == "10:00"  # type: ignore[index]
    assert settings["run_business_hours"]["end"] == "17:00"  # type: ignore[index]
    assert settings["business_hours"]["start"] == "09:00"  # type: ignore[index]
    assert settings["log"]["path"] == str(tmp_path / "other.log")  # type: ignore[index]
    assert settings["dry_run"] is True
    # A log chosen by Param is evidence no one configured: diagnose and report only (tests/safety/test_scope_...).
    assert settings["allow_restart"] is False


# -- messages --------------------------------------------------------------------------------------------------
def test_ops_message_has_the_numbers_and_the_suggestion(tmp_path: Path) -> None:
    settings = _settings({}, tmp_path)
    verdict, _ = _diagnose("overloaded", 5000, 90)
    capacity = assess_capacity(Capacity(), 5000, None)
    diagnosis = {"verdict": verdict.as_dict(), "capacity": capacity.as_dict()}
    message = ops_message(diagnosis, {"outstanding": 5000, "oldest_age_minutes": 90, "overdue": 0}, settings)
    assert "5000" in message["text"]
    assert "1920" in message["text"]
    assert f"every *{capacity.suggested_interval_minutes} min*" in message["text"]


def test_developers_message_has_order_error_and_excerpt(tmp_path: Path) -> None:
    settings = _settings({}, tmp_path)
    verdict, summary = _diagnose("stuck", 40)
    diagnosis = {"verdict": verdict.as_dict(), "capacity": {}}
    message = developers_message(diagnosis, {"outstanding": 40, "oldest_age_minutes": 30}, summary.as_dict(), settings)
    assert "order 11" in message["text"]
    assert "Error #12" in message["text"]
    assert "ERROR Error Processing Order. Error #12" in message["blocks"][2]["text"]["text"]


@pytest.mark.parametrize(
    ("restart", "verification", "escalate"),
    [
        pytest.param({"restarted": True, "restarted_at": "t"}, {"status": "recovered", "detail": "ok"}, False, id="ok"),
        pytest.param(
            {"restarted": True, "restarted_at": "t"}, {"status": "timeout", "detail": "no"}, True, id="timeout"
        ),
        pytest.param({"restarted": False, "already_done": True, "reason": "r"}, None, True, id="already-restarted"),
        pytest.param(
            {"restarted": False, "allowed_from": "2026-11-23T08:00:00+00:00", "reason": "r"}, None, False, id="later"
        ),
    ],
)
def test_outcome_escalation(
    restart: dict[str, object], verification: dict[str, object] | None, escalate: bool, tmp_path: Path
) -> None:
    settings = _settings({}, tmp_path)
    diagnosis = {"verdict": STUCK_VERDICT.as_dict(), "capacity": {}}
    outcome = outcome_report(diagnosis, {"outstanding": 40}, restart, verification, settings)
    assert outcome["escalate"] is escalate
    assert outcome["worth_reporting"]


def test_dry_run_messages_say_so(tmp_path: Path) -> None:
    settings = _settings({"dry_run": True}, tmp_path)
    verdict, summary = _diagnose("stuck", 40)
    message = developers_message(
        {"verdict": verdict.as_dict(), "capacity": {}},
        {"outstanding": 40, "oldest_age_minutes": 30},
        summary.as_dict(),
        settings,
    )
    assert message["text"].startswith("[dry run] Order processor stuck on order 11")
