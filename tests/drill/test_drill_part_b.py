"""Drills part B (issue 21): the stuck_orders, log_mount_full and rds_near_full scenarios' injectors, exporters,
recovery checks and preparers, against the same data the sandbox uses (no Airflow, no sandbox started)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sandbox.drill import logmount, orders, preparers, rds, report, runner, scenarios
from sandbox.drill.exporters import EXPORTERS
from sandbox.drill.injectors import INJECTORS
from sandbox.drill.recovery import CHECKS
from sandbox.order_backlog_check_data import processor_log, recovery_lines, seed_sqlite, write_log
from toilless.common.policies import WeeklyWindow

PART_B = ["stuck_orders", "log_mount_full", "rds_near_full"]


@pytest.mark.parametrize("name", [pytest.param(name, id=name) for name in PART_B])
def test_shipped_scenario_loads_with_registered_pieces(name: str) -> None:
    scenario = scenarios.load(name)
    assert scenario.injector in INJECTORS
    assert scenario.exporter in EXPORTERS
    assert scenario.recovery_check in CHECKS
    assert scenario.prepare is None or scenario.prepare in preparers.PREPARERS


def test_unknown_preparer_is_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = (scenarios.SCENARIO_DIR / "stuck_orders.yaml").read_text(encoding="utf-8")
    (tmp_path / "stuck_orders.yaml").write_text(raw.replace("prepare: orders_baseline", "prepare: nope"))
    with pytest.raises(scenarios.DrillError, match="unknown preparer 'nope'"):
        scenarios.load("stuck_orders", directory=tmp_path)


# -- stuck_orders ------------------------------------------------------------------------------------------------
@pytest.fixture
def orders_sandbox(tmp_path: Path) -> dict[str, Any]:
    """The orders service's state as the sandbox seeds it: 40 outstanding, a processor stuck on order 11."""
    now = datetime.now(UTC)
    database, log = tmp_path / "orders.sqlite", tmp_path / "logs" / "order_processing.log"
    seed_sqlite(database, outstanding=40, now=now)
    write_log(log, processor_log("stuck", now=now))
    return {"orders": {"database": str(database), "log": str(log)}}


def _restart(published: dict[str, Any], count: int = 5) -> None:
    """What the sandbox's ProcessorStandIn does after a rollout restart: the oldest orders processed, a new run."""
    import sqlite3

    with sqlite3.connect(published["orders"]["database"]) as connection:
        connection.execute(
            "UPDATE orders SET status = 'processed' WHERE id IN (SELECT id FROM orders WHERE status IN "
            "('new', 'processing') ORDER BY created_at LIMIT ?)",
            (count,),
        )
    connection.close()
    with Path(published["orders"]["log"]).open("a", encoding="utf-8") as handle:
        handle.writelines(f"{line}\n" for line in recovery_lines(start=datetime.now(UTC), first_order=99, orders=count))


def test_stuck_orders_baseline_fault_and_restart(orders_sandbox: dict[str, Any]) -> None:
    assert not orders.drained(orders_sandbox)  # the sandbox's own demo is stuck: the drill needs its baseline
    overrides = orders.prepare(orders_sandbox)
    assert orders.drained(orders_sandbox)
    assert set(overrides) == {"toilless_toilless"}  # not the SOP's: the sandbox sets that one in the environment
    assert set(overrides["toilless_toilless"]) == {"business_hours"}

    fault = orders.inject(orders_sandbox)
    assert "Error #12" in fault
    assert not orders.drained(orders_sandbox)
    samples = orders.export(orders_sandbox)
    assert samples['orders_outstanding{service="order-processor"}'] == 12
    age = samples['orders_oldest_outstanding_age_seconds{service="order-processor"}']
    assert orders.STUCK_MINUTES * 60 - 5 <= age <= orders.STUCK_MINUTES * 60 + 60  # the alert's > 7200 holds

    _restart(orders_sandbox)
    assert orders.drained(orders_sandbox)  # the overdue five went first; the rest are within the limit
    assert orders.backlog(orders_sandbox)[0] == 7


def test_a_restart_that_processes_too_little_is_not_recovery(orders_sandbox: dict[str, Any]) -> None:
    orders.prepare(orders_sandbox)
    orders.inject(orders_sandbox)
    _restart(orders_sandbox, count=2)
    assert not orders.drained(orders_sandbox)


def test_stuck_run_repeats_error_12_on_one_order() -> None:
    now = datetime.now(UTC)
    lines = orders.stuck_run_lines(541, now=now, minutes=10)
    assert lines[0].endswith("Startup...")
    assert lines[1].endswith("Processing Order 541")
    assert len([line for line in lines if line.endswith(orders.ERROR_12)]) == 20
    assert not orders.run_progressing(lines)


@pytest.mark.parametrize(
    ("tail", "progressing"),
    [
        pytest.param(["x INFO Startup...", "x INFO Processing Order 1", "x INFO Order Processed"], True, id="progress"),
        pytest.param(["x INFO Startup...", "x INFO All Orders processed."], True, id="finished"),
        pytest.param(["x INFO Startup...", "x INFO Order Processed", f"x ERROR {orders.ERROR_12}"], False, id="error"),
        pytest.param(["x INFO Startup...", "x INFO Processing Order 1"], False, id="nothing-done"),
        pytest.param([], False, id="empty"),
    ],
)
def test_latest_run_progress(tail: list[str], progressing: bool) -> None:
    earlier = ["y INFO Startup...", "y INFO Order Processed"]  # an older run's progress does not count
    assert orders.run_progressing([*earlier, *tail] if tail else tail) is progressing


@pytest.mark.parametrize(
    "moment",
    [
        pytest.param(timedelta(hours=0), id="now"),
        pytest.param(timedelta(hours=11, minutes=37), id="later-today"),
        pytest.param(timedelta(days=3, hours=5), id="another-weekday"),
    ],
)
def test_business_hours_hold_for_the_drill_on_any_day(moment: timedelta) -> None:
    # Around midnight too: the window then runs past midnight.
    for base in (datetime.now(UTC), datetime.now(UTC).replace(hour=23, minute=30), datetime.now(UTC).replace(hour=0)):
        now = base + moment
        window = WeeklyWindow.from_config(orders.business_hours_around(now))
        assert window.contains(now)
        assert window.contains(now + timedelta(hours=2, minutes=50))  # a drill's generous budget later
        assert window.contains(now - timedelta(minutes=50))


# -- log_mount_full ----------------------------------------------------------------------------------------------
def test_log_mount_fill_export_and_recovery(tmp_path: Path) -> None:
    from sandbox.log_rotation_data import write_log as write_demo_log

    write_demo_log(tmp_path / "app.log", "app", 2 << 20)
    published = {"demo_logs": str(tmp_path)}
    assert logmount.below_warning(published)
    fault = logmount.inject(published)
    assert "app.log" in fault
    used = logmount.used_bytes(tmp_path)
    assert logmount.used_percent(used) >= logmount.FILL_TO_PERCENT
    samples = logmount.export(published)
    (avail,) = [value for key, value in samples.items() if key.startswith("node_filesystem_avail_bytes")]
    assert avail == logmount.MOUNT_BYTES - used
    assert any(f'mountpoint="{tmp_path}"' in key for key in samples)
    assert not logmount.below_warning(published)
    # What rotation does: the big file renamed and compressed to a fraction.
    (tmp_path / "app.log").rename(tmp_path / "app.log.20260101T000000Z.1")
    (tmp_path / "app.log.20260101T000000Z.1").write_bytes(b"z" * (1 << 20))
    assert logmount.below_warning(published)


@pytest.mark.parametrize(
    ("used", "wanted"),
    [
        pytest.param(0, int(logmount.MOUNT_BYTES * logmount.FILL_TO_PERCENT / 100), id="empty"),
        pytest.param(logmount.MOUNT_BYTES, 0, id="already-full"),
        pytest.param(logmount.MOUNT_BYTES // 2, int(logmount.MOUNT_BYTES * 0.38) + 1, id="half"),
    ],
)
def test_fill_bytes(used: int, wanted: int) -> None:
    assert abs(logmount.fill_bytes(used) - wanted) <= 1


def test_missing_log_mount_is_not_recovered(tmp_path: Path) -> None:
    assert logmount.used_bytes(tmp_path / "gone") == 0  # os.walk of nothing
    assert not logmount.below_warning({"demo_logs": str(tmp_path / "gone")})


# -- rds_near_full -----------------------------------------------------------------------------------------------
@pytest.fixture
def rds_clients(monkeypatch: pytest.MonkeyPatch) -> Any:
    from moto import mock_aws

    from sandbox.rds_storage_guard_data import seed_rds_instance

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        import boto3

        clients = {name: boto3.client(name, region_name="eu-central-1") for name in ("rds", "cloudwatch")}
        seed_rds_instance(clients["rds"], clients["cloudwatch"], rds.INSTANCE, allocated_gib=100, used_pct=86.0)
        monkeypatch.setattr(rds, "client", lambda published, service: clients[service])
        yield clients
    rds.stop_load()


def test_rds_bulk_load_alerts_and_only_a_growth_recovers(rds_clients: Any) -> None:
    published: dict[str, Any] = {}
    assert rds.storage_ok(published)  # the demo's 14 GiB free
    fault = rds.inject(published)
    assert "93 GiB" in fault
    assert not rds.storage_ok(published)
    (free,) = rds.export(published).values()
    assert free == 7 * rds.GIB < rds.THRESHOLD_BYTES
    later = datetime.now(UTC) + timedelta(seconds=rds.WINDOW_SECONDS + 5)
    # Time alone does not help while the data stays: the load keeps reporting 7 GiB free.
    rds.publish_loaded(rds_clients["rds"], rds_clients["cloudwatch"], now=later)
    assert rds.free_minimum(rds_clients["cloudwatch"], now=later) == 7 * rds.GIB
    rds_clients["rds"].modify_db_instance(
        DBInstanceIdentifier=rds.INSTANCE, AllocatedStorage=124, ApplyImmediately=True
    )
    grown = later + timedelta(seconds=rds.WINDOW_SECONDS + 5)
    rds.publish_loaded(rds_clients["rds"], rds_clients["cloudwatch"], now=grown)
    assert rds.free_minimum(rds_clients["cloudwatch"], now=grown) == 31 * rds.GIB


def test_rds_stop_load_ends_the_writer(rds_clients: Any) -> None:
    rds.inject({})
    assert rds._writers
    rds.stop_load()
    assert not rds._writers


# -- preparers and the runner's Variable overrides -------------------------------------------------------------
def test_merged_keeps_the_sandbox_settings() -> None:
    current = {"policy": {"auto_grow": False, "cap_gib": 500}, "instance_ids": ["a"]}
    assert preparers.merged(current, {"policy": {"auto_grow": True}}) == {
        "policy": {"auto_grow": True, "cap_gib": 500},
        "instance_ids": ["a"],
    }
    assert preparers.merged("not json object", {"a": 1}) == {"a": 1}


class FakeAirflow:
    def __init__(self, variables: dict[str, str]) -> None:
        self.variables = dict(variables)

    def variable(self, key: str) -> str | None:
        return self.variables.get(key)

    def set_variable(self, key: str, value: str | None) -> None:
        if value is None:
            self.variables.pop(key, None)
        else:
            self.variables[key] = value


def test_overrides_are_applied_then_restored_exactly() -> None:
    original = json.dumps({"log": {"path": "/x"}, "business_hours": None})
    airflow = FakeAirflow({"toilless_order_backlog_check": original})
    overrides = {
        "toilless_order_backlog_check": {"business_hours": {"days": ["monday"], "start": "01:00", "end": "02:00"}},
        "toilless_rds_storage_guard": {"policy": {"auto_grow": True}},
    }
    originals = runner.apply_overrides(airflow, overrides)  # type: ignore[arg-type]
    during = json.loads(airflow.variables["toilless_order_backlog_check"])
    assert during["log"] == {"path": "/x"}
    assert during["business_hours"]["start"] == "01:00"
    assert json.loads(airflow.variables["toilless_rds_storage_guard"]) == {"policy": {"auto_grow": True}}
    runner.restore(airflow, originals, print)  # type: ignore[arg-type]
    assert airflow.variables == {"toilless_order_backlog_check": original}


# -- report: the new expectations ------------------------------------------------------------------------------
def _event(kind: str, offset: float, **data: Any) -> dict[str, Any]:
    return {"kind": kind, "at": 1000.0 + offset, "actor": "toilless", "summary": kind, "data": data}


def test_expected_actions_and_channels() -> None:
    events = [
        _event("message_sent", 5, channel="developers"),
        _event("gate_verdict", 6, allowed=True, action="restart the order processor", target="orders/order-processor"),
    ]
    found = report.figures(1000.0, events, 1030.0)
    assert found.channels_told == ["developers"]
    assert report.verdict({"actions": {"restart": 1}, "told_channels": ["developers"]}, found, 300) == []
    problems = report.verdict(
        {"actions": {"restart": 2, "grow storage": 1}, "told_channels": ["compliance"]}, found, 300
    )
    assert "1 allowed 'restart' actions, expected 2" in problems
    assert "0 allowed 'grow storage' actions, expected 1" in problems
    assert any(problem.startswith("nobody told in #compliance") for problem in problems)


# -- the approval responder ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("created", "answered"),
    [
        pytest.param(timedelta(seconds=3), True, id="after-the-fault"),
        pytest.param(timedelta(seconds=-60), False, id="an-older-question"),
    ],
)
def test_only_requests_of_this_drill_are_answered(created: timedelta, answered: bool) -> None:
    fault = datetime.now(UTC)
    detail = {"created_at": (fault + created).isoformat().replace("+00:00", "Z")}
    assert runner.asked_after(detail, fault.timestamp()) is answered


def test_malformed_request_is_not_answered() -> None:
    assert not runner.asked_after({}, 0.0)
    assert not runner.asked_after({"created_at": "yesterday"}, 0.0)


def test_rds_scenario_answers_the_approval_as_a_person() -> None:
    scenario = scenarios.load("rds_near_full")
    assert scenario.approval == "Approve"
    assert scenario.prepare is None  # the sandbox's own policy: auto_grow off, so the guard asks
    assert scenarios.load("log_mount_full").approval is None


class RefusingAirflow(FakeAirflow):
    """Airflow refusing to set one Variable."""

    def set_variable(self, key: str, value: str | None) -> None:
        if key == "refused" and value is not None:
            raise RuntimeError("Airflow answered 403 setting the Variable refused")
        super().set_variable(key, value)


def test_a_failure_halfway_still_restores_what_was_changed() -> None:
    airflow = RefusingAirflow({"first": '{"a": 1}'})
    originals: dict[str, str | None] = {}
    with pytest.raises(RuntimeError, match="403"):
        runner.apply_overrides(airflow, {"first": {"a": 2}, "refused": {"b": 1}}, originals)  # type: ignore[arg-type]
    assert json.loads(airflow.variables["first"]) == {"a": 2}
    runner.restore(airflow, originals, print)  # type: ignore[arg-type]
    assert airflow.variables == {"first": '{"a": 1}'}


def test_an_unreadable_variable_is_never_taken_for_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    airflow = runner.Airflow({"base_url": "http://127.0.0.1:9", "published": {"alert_intake": {"token": "t"}}})
    monkeypatch.setattr(airflow, "api", lambda method, path, body=None: (0, None))
    with pytest.raises(RuntimeError, match="answered 0 reading the Variable x"):
        airflow.variable("x")
    monkeypatch.setattr(airflow, "api", lambda method, path, body=None: (404, None))
    assert airflow.variable("x") is None


@pytest.mark.parametrize(
    ("state", "answered"),
    [
        pytest.param("awaiting_input", True, id="parked"),
        pytest.param("deferred", True, id="deferred"),
        pytest.param("running", False, id="still-posting"),
        pytest.param(None, False, id="unknown"),
    ],
)
def test_the_drill_answers_only_a_parked_approval_task(state: str | None, answered: bool) -> None:
    assert runner.waiting_for_answer({"task_instance": {"state": state}}) is answered


def test_only_the_incidents_own_runs_are_answered() -> None:
    # The first rds_near_full drill approved a scheduled run's question too: only the intake's run is the incident's.
    events = [
        {"kind": "runbook_started", "data": {"dag_id": "rds_storage_guard", "run_id": "alert__RDSLowStorage__x"}},
        {"kind": "runbook_started", "data": {"dag_id": "other_dag", "run_id": "alert__Other__y"}},
        {"kind": "message_sent", "data": {"dag_id": "rds_storage_guard", "run_id": "scheduled__2026"}},
        {"kind": "runbook_started", "data": "not a mapping"},
    ]
    assert runner.incident_runs(events, "rds_storage_guard") == {"alert__RDSLowStorage__x"}
    assert runner.incident_runs([], "rds_storage_guard") == set()


def _question(run_id: str = "alert__x", state: str = "awaiting_input", created: float = 10.0) -> dict[str, Any]:
    return {
        "options": ["Approve", "Reject"],
        "created_at": datetime.fromtimestamp(created, UTC).isoformat(),
        "task_instance": {"dag_run_id": run_id, "task_id": "request_approval", "map_index": -1, "state": state},
    }


def test_the_drill_answers_like_a_person_some_seconds_after_the_task_parked() -> None:
    parked: dict[str, float] = {}
    runs = {"alert__x"}
    assert not runner.ready_to_answer(_question(state="running"), "Approve", runs, 0.0, parked, 100.0)
    assert not runner.ready_to_answer(_question(), "Approve", runs, 0.0, parked, 100.0)  # first seen parked
    assert not runner.ready_to_answer(_question(), "Approve", runs, 0.0, parked, 100.0 + runner.RESPONDER_SECONDS - 1)
    assert runner.ready_to_answer(_question(), "Approve", runs, 0.0, parked, 100.0 + runner.RESPONDER_SECONDS)


@pytest.mark.parametrize(
    ("question", "option"),
    [
        pytest.param(_question(run_id="scheduled__2026"), "Approve", id="a-scheduled-runs-question"),
        pytest.param(_question(created=-5.0), "Approve", id="asked-before-the-fault"),
        pytest.param(_question(), "Maybe", id="not-an-option"),
    ],
)
def test_questions_the_drill_never_answers(question: dict[str, Any], option: str) -> None:
    parked = {runner.question_key(question): 0.0}  # parked long ago
    assert not runner.ready_to_answer(question, option, {"alert__x"}, 0.0, parked, 1000.0)
