"""Shared scenarios of the order_backlog_check unit tests (a fixed clock: the logs are generated relative to it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sandbox.order_backlog_check_data import processor_log
from toilless.common.config import read_defaults
from toilless.sops.order_backlog_check.capacity import Capacity, assess_capacity
from toilless.sops.order_backlog_check.log_parsing import RunSummary, latest_run_lines, summarize_run
from toilless.sops.order_backlog_check.settings import resolve_settings
from toilless.sops.order_backlog_check.verdict import STUCK, Backlog, Thresholds, Verdict, classify

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
STUCK_VERDICT = Verdict(STUCK, ["x"], incident_key="stuck:order-5:error-12", stuck_order="5", error_code="12")
#: classify_backlog's result for a processor stuck on order 11 (what the restart step receives).
STUCK_DIAGNOSIS = {
    "verdict": {
        "verdict": "stuck",
        "reasons": ["the processor repeated `Error #12` 40 times on order 11"],
        "incident_key": "stuck:order-11:error-12",
        "stuck_order": "11",
        "error_code": "12",
        "error_repeats": 40,
        "minutes_since_progress": 19.0,
        "backlog_over_threshold": False,
        "restartable": True,
    },
    "capacity": {},
}


def diagnose(scenario: str, outstanding: int, oldest_minutes: float = 30.0) -> tuple[Verdict, RunSummary]:
    lines, found = latest_run_lines([processor_log(scenario, now=NOW)])
    summary = summarize_run(lines, found_startup=found)
    capacity = Capacity()
    thresholds = Thresholds()
    backlog = Backlog(outstanding=outstanding, oldest_created_at=NOW - timedelta(minutes=oldest_minutes))
    assessment = assess_capacity(capacity, outstanding, summary, thresholds.min_orders_for_throughput)
    return classify(summary, backlog, assessment, thresholds, capacity, NOW), summary


def resolved_settings(params: dict[str, object], tmp_path: Path) -> dict[str, object]:
    config = read_defaults("order_backlog_check")
    config["log"]["allowed_roots"] = [str(tmp_path)]
    config["log"]["path"] = str(tmp_path / "order_processing.log")
    return resolve_settings(config, read_defaults("toilless"), params)
