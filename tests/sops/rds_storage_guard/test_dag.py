"""rds_storage_guard end to end (dag.test()) against a moto server (RDS + CloudWatch) and the Slack sink.

The approval path (a person answers in Airflow) needs a running Airflow: tests/sops/rds_storage_guard/test_live.py.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sandbox.rds_storage_guard_data import seed_rds_instance
from toilless.common.gate import GatePolicy
from toilless.hooks.rds import RdsHook
from toilless.sops.rds_storage_guard import expansion
from toilless.sops.rds_storage_guard.markers import MARKER_TAG

pytestmark = pytest.mark.integration

DAG_ID = "rds_storage_guard"
DAG_FILE = Path(__file__).resolve().parents[3] / "dags" / f"{DAG_ID}.py"
#: The shared maintenance window (Sunday 02:00-04:00 UTC) must not make these tests depend on the clock.
NO_WINDOW = {"respect_maintenance_window": False}
#: Automatic growth is a configuration change (Variable), never a run Param: Params may only tighten policy.
#: The instances automatic growth applies to are configured too: a run Param may only narrow the configured scope
#: (with none configured, growth of a Param-chosen instance needs approval).
AUTO_GROW = {**NO_WINDOW, "instance_ids": ["auto-db", "cool-db", "capped-db", "dry-db"], "policy": {"auto_grow": True}}


@pytest.fixture
def run_guard(airflow_db):
    """dag.test() of this DAG, parsing only its own file (other DAG files' import errors are not this test's)."""
    from airflow.dag_processing.dagbag import DagBag

    def _run(**conf: Any) -> Any:
        bag = DagBag(dag_folder=str(DAG_FILE))
        assert not bag.import_errors, bag.import_errors
        return bag.get_dag(DAG_ID).test(run_conf=conf)

    return _run


@pytest.fixture
def guard(moto_server, slack_sink, set_connection, set_variable, run_guard):
    """moto + Slack sink (with the API connection, so charts are uploaded) + a runner returning run facts."""
    set_connection("slack_api", slack_sink.api_connection())
    set_variable("toilless_rds_storage_guard", NO_WINDOW)
    rds = moto_server.client("rds")
    cloudwatch = moto_server.client("cloudwatch")

    class Guard:
        def seed(self, instance_id: str, **kwargs: Any) -> dict[str, Any]:
            return seed_rds_instance(rds, cloudwatch, instance_id, **kwargs)

        def describe(self, instance_id: str) -> dict[str, Any]:
            return rds.describe_db_instances(DBInstanceIdentifier=instance_id)["DBInstances"][0]

        def run(self, **conf: Any) -> tuple[Any, dict[str, str]]:
            dag_run = run_guard(**conf)
            states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
            return dag_run, states

        def run_successfully(self, **conf: Any) -> dict[str, str]:
            """Run, assert the run succeeded, and return the task states."""
            dag_run, states = self.run(**conf)
            assert dag_run.state == "success", states
            return states

        def reports(self) -> list[dict[str, Any]]:
            return slack_sink.messages("infrastructure")

    return Guard()


def report_text(guard) -> str:
    reports = guard.reports()
    assert len(reports) == 1, reports
    return reports[0]["text"]


def test_warning_path_recommends_autoscaling_and_charts(guard, slack_sink) -> None:
    guard.seed("warn-db", allocated_gib=100, used_pct=84.0, growth_gib_per_day=0.2)
    states = guard.run_successfully(instance_ids=["warn-db"])
    assert states["request_approval"] == "skipped"
    assert states["expand_allocated_storage"] == "skipped"
    assert states["report_storage"] == "success"
    text = report_text(guard)
    assert "WARNING" in text
    assert "`warn-db` WARNING (100 GiB gp3): recommend storage autoscaling" in text
    assert "84.0% used" in text
    assert guard.describe("warn-db")["AllocatedStorage"] == 100
    files = [m for m in slack_sink.messages() if m["kind"] == "file"]
    assert len(files) == 1
    assert files[0]["channel"].lower().endswith("infrastructure")
    assert files[0]["files"][0]["bytes"] > 1000  # a real PNG went up


def test_automatic_growth_grows_once_and_verifies(guard, set_variable) -> None:
    set_variable("toilless_rds_storage_guard", AUTO_GROW)
    guard.seed("auto-db", allocated_gib=100, used_pct=93.0, growth_gib_per_day=0.5)
    states = guard.run_successfully(instance_ids=["auto-db"])
    assert states["request_approval"] == "skipped"
    assert states["expand_allocated_storage"] == "success"
    assert states["verify_expansion"] == "success"
    # 93 GiB used + 0.5 GiB/day x 30 days = 108 GiB at <= 75% used -> 144 GiB.
    instance = guard.describe("auto-db")
    assert instance["AllocatedStorage"] == 144
    marker = {t["Key"]: t["Value"] for t in instance["TagList"]}[MARKER_TAG]
    assert " from=100 to=144 " in marker
    text = report_text(guard)
    assert "CRITICAL" in text
    assert "grown 100 -> 144 GiB (ApplyImmediately); verified: status available, allocated 144 GiB" in text
    assert "+5.06 USD/month" in text


def test_next_run_after_growth_is_in_cooldown(guard, set_variable) -> None:
    set_variable("toilless_rds_storage_guard", AUTO_GROW)
    guard.seed("cool-db", allocated_gib=100, used_pct=96.0, growth_gib_per_day=0.0)
    guard.run(instance_ids=["cool-db"], critical_pct=90)
    assert guard.describe("cool-db")["AllocatedStorage"] == 128
    # The metric history still says 96% of the old size; a second run must not grow again (RDS cool-down, marker),
    # even with thresholds the configuration lowered meanwhile.
    lowered = {**AUTO_GROW, "policy": {"auto_grow": True, "critical_used_pct": 70, "warning_used_pct": 60}}
    set_variable("toilless_rds_storage_guard", lowered)
    states = guard.run_successfully(instance_ids=["cool-db"])
    assert states["expand_allocated_storage"] == "skipped"
    assert guard.describe("cool-db")["AllocatedStorage"] == 128
    assert "blocked (modification_cooldown)" in guard.reports()[-1]["text"]


def test_cap_reached_blocks_growth(guard, set_variable) -> None:
    set_variable("toilless_rds_storage_guard", AUTO_GROW)
    guard.seed("capped-db", allocated_gib=100, used_pct=95.0, growth_gib_per_day=0.5)
    states = guard.run_successfully(instance_ids=["capped-db"], cap_gib=105)
    assert states["expand_allocated_storage"] == "skipped"
    assert guard.describe("capped-db")["AllocatedStorage"] == 100
    text = report_text(guard)
    assert "blocked (cap_reached)" in text
    assert "above the cap of 105 GiB" in text


def test_dry_run_changes_nothing(guard, set_variable) -> None:
    set_variable("toilless_rds_storage_guard", AUTO_GROW)
    guard.seed("dry-db", allocated_gib=200, used_pct=95.0, growth_gib_per_day=1.0)
    states = guard.run_successfully(instance_ids=["dry-db"], dry_run=True)
    assert states["expand_allocated_storage"] == "skipped"
    assert states["request_approval"] == "skipped"
    instance = guard.describe("dry-db")
    assert instance["AllocatedStorage"] == 200
    assert MARKER_TAG not in {t["Key"] for t in instance["TagList"]}
    text = report_text(guard)
    assert "[dry run]" in text
    assert "dry run: would grow to" in text


def test_maintenance_window_turns_auto_growth_into_a_request(guard, set_variable) -> None:
    always = {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "00:00", "end": "23:59"}
    set_variable("toilless_toilless", {"maintenance_window": always})
    set_variable(
        "toilless_rds_storage_guard",
        {"respect_maintenance_window": True, "instance_ids": ["window-db"], "policy": {"auto_grow": True}},
    )
    guard.seed("window-db", allocated_gib=100, used_pct=95.0, growth_gib_per_day=0.1)
    guard.run_successfully(instance_ids=["window-db"], dry_run=True)
    assert "needs approval (automatic growth not allowed now: inside the maintenance window" in report_text(guard)


def test_alert_triggered_run_checks_the_alerted_instance_only(guard) -> None:
    guard.seed("alerted-db", allocated_gib=100, used_pct=82.0, growth_gib_per_day=0.1)
    guard.seed("other-db", allocated_gib=100, used_pct=82.0, growth_gib_per_day=0.1)
    alert = {"alertname": "RDSLowStorage", "status": "firing", "labels": {"dbinstance_identifier": "alerted-db"}}
    guard.run_successfully(alert=alert)
    text = report_text(guard)
    assert "`alerted-db`" in text
    assert "other-db" not in text


def test_unknown_instance_fails_clearly_and_changes_nothing(guard, slack_sink) -> None:
    guard.seed("real-db", allocated_gib=100, used_pct=95.0)
    dag_run, states = guard.run(instance_ids=["no-such-db"], auto_grow=False)

    assert dag_run.state == "failed"
    assert states["measure_storage"] == "failed"
    assert guard.describe("real-db")["AllocatedStorage"] == 100
    # The shared failure notifier says why, once the retries are used up.
    alerts = [m for m in slack_sink.messages() if "no RDS instance no-such-db" in m["text"]]
    assert len(alerts) == 1


class CrashAfterModify:
    """An RDS client that lets modify_db_instance through, then dies as if the worker was killed."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.modify_calls = 0

    def modify_db_instance(self, **kwargs: Any) -> Any:
        self.modify_calls += 1
        response = self._client.modify_db_instance(**kwargs)
        if self.modify_calls == 1:
            raise ConnectionError("worker lost after modify_db_instance")
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_retry_after_crash_between_modify_and_verify_grows_once(guard, moto_server) -> None:
    guard.seed("crash-db", allocated_gib=100, used_pct=95.0)
    hook = RdsHook(aws_conn_id="aws_default")
    spy = CrashAfterModify(hook.rds)
    hook.__dict__["rds"] = spy  # the cached client, wrapped
    kwargs = {
        "from_gib": 100,
        "target_gib": 130,
        "new_max_allocated_gib": None,
        "run_id": "manual__crash",
        "gate_policy": GatePolicy(),
    }

    with pytest.raises(ConnectionError):
        expansion.grow_storage_once(hook, "crash-db", **kwargs)
    assert guard.describe("crash-db")["AllocatedStorage"] == 130

    retried = expansion.grow_storage_once(hook, "crash-db", **kwargs, now=datetime.now(UTC))
    assert retried["modified"] is False
    assert retried["outcome"] == "already_done"
    assert spy.modify_calls == 1
    assert guard.describe("crash-db")["AllocatedStorage"] == 130
    status = hook.expansion_status("crash-db", 130)
    assert status["done"] is True


def test_changed_allocation_since_decision_is_refused(guard) -> None:
    guard.seed("moved-db", allocated_gib=120, used_pct=95.0)
    hook = RdsHook(aws_conn_id="aws_default")
    with pytest.raises(RuntimeError, match="changed from 100 to 120 GiB"):
        expansion.grow_storage_once(
            hook,
            "moved-db",
            from_gib=100,
            target_gib=130,
            new_max_allocated_gib=None,
            run_id="r",
            gate_policy=GatePolicy(),
        )
    assert guard.describe("moved-db")["AllocatedStorage"] == 120


def test_table_hint_from_a_sqlite_connection(guard, set_connection, tmp_path: Path) -> None:
    import sqlite3

    database = tmp_path / "orders.db"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE order_events (payload TEXT)")
        connection.executemany("INSERT INTO order_events VALUES (?)", [("x" * 500,) for _ in range(2000)])
        connection.execute("CREATE TABLE customers (name TEXT)")
    set_connection("rds_hint-db", {"conn_type": "sqlite", "host": str(database)})
    guard.seed("hint-db", allocated_gib=100, used_pct=85.0, growth_gib_per_day=0.2)
    guard.seed("nohint-db", allocated_gib=100, used_pct=85.0, growth_gib_per_day=0.2)
    guard.run_successfully(instance_ids=["hint-db", "nohint-db"])
    text = report_text(guard)
    assert "largest tables: order_events" in text
    assert text.index("order_events") < text.index("customers")
    assert "largest tables: unknown (no database Connection rds_nohint-db)" in text


def test_table_hint_from_postgres_shows_growth_between_runs(guard, set_connection, postgres_server) -> None:
    postgres_server.create_database("pg_hint")
    connection = postgres_server.connect("pg_hint")
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE order_events (id serial PRIMARY KEY, payload text)")
        cursor.execute("INSERT INTO order_events (payload) SELECT repeat('x', 400) FROM generate_series(1, 5000)")
        cursor.execute("CREATE TABLE customers (id serial PRIMARY KEY, name text)")
        cursor.execute("INSERT INTO customers (name) SELECT 'c' || g FROM generate_series(1, 100) AS g")
    set_connection("rds_pg-db", postgres_server.airflow_connection("pg_hint"))
    guard.seed("pg-db", allocated_gib=100, used_pct=85.0, growth_gib_per_day=0.2)

    first, _ = guard.run(instance_ids=["pg-db"])
    assert first.state == "success"
    first_text = guard.reports()[-1]["text"]
    first_hint = next(line for line in first_text.splitlines() if "largest tables:" in line)
    assert "largest tables: public.order_events" in first_hint
    assert "/day" not in first_hint  # no earlier sizes yet

    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO order_events (payload) SELECT repeat('y', 400) FROM generate_series(1, 20000)")
    connection.close()
    second, _ = guard.run(instance_ids=["pg-db"])
    assert second.state == "success"
    second_text = guard.reports()[-1]["text"]
    hint = next(line for line in second_text.splitlines() if "largest tables:" in line)
    order_events = hint.split(";")[0]
    assert "largest tables: public.order_events" in order_events
    growth = re.search(r"([+-]\d+\.\d+) (GiB|MiB)/day", order_events)
    assert growth is not None, order_events
    assert float(growth.group(1)) > 0  # 20,000 rows in seconds: a steep GiB/day
    assert "public.customers" in hint


def test_alert_without_instance_label_fails_at_once(guard) -> None:
    alert = {"alertname": "RDSLowStorage", "status": "firing", "labels": {"severity": "critical"}}
    dag_run, states = guard.run(alert=alert)

    assert dag_run.state == "failed"
    assert states["measure_storage"] == "failed"
    assert states["expand_allocated_storage"] == "upstream_failed"
    assert guard.reports() == []


def test_tag_filter_selects_instances(guard) -> None:
    guard.seed("orders-main", allocated_gib=100, used_pct=82.0, tags={"team": "orders"})
    guard.seed("billing-main", allocated_gib=100, used_pct=82.0, tags={"team": "billing"})
    guard.run_successfully(tag_filter={"team": "orders"})
    text = report_text(guard)
    assert "`orders-main`" in text
    assert "billing-main" not in text


def test_sandbox_seed_is_near_critical_and_idempotent(moto_server, tmp_path: Path) -> None:
    """The `make run` seed: start() returns at once, the instance is a warning close to critical, a re-run adds nothing."""

    from sandbox.service import SandboxContext
    from sandbox.services.rds_storage_guard import DEMO_INSTANCE, RdsDemoService
    from toilless.sops.rds_storage_guard import forecasting, growth_plan, storage_policy

    ctx = SandboxContext(home=tmp_path, published={"moto": moto_server})
    for _ in range(2):
        service = RdsDemoService()
        service.start(ctx)
        # start() hands the seeding to a thread and returns, so `make run` does not wait for moto (checked by how it
        # works, not by a stopwatch: a loaded CI machine took 1.1 s to start the thread and return).
        assert service._thread is not None
        assert service._thread.name == "rds-demo-seed"
        service.wait()
        service.stop()
    rds = moto_server.client("rds")
    instances = rds.describe_db_instances()["DBInstances"]
    assert [i["DBInstanceIdentifier"] for i in instances] == [DEMO_INSTANCE]

    hook = RdsHook(aws_conn_id="aws_default")
    now = datetime.now(UTC)
    history = hook.free_storage_history(
        [DEMO_INSTANCE], start=now - timedelta(days=7, hours=1), end=now, period_seconds=3600
    )
    instance = forecasting.instance_from_description(instances[0], history[DEMO_INSTANCE], None)
    decision = growth_plan.decide(instance, storage_policy.StoragePolicy(), now=now)
    assert decision.state == forecasting.WARNING
    forecast = decision.forecast
    assert forecast is not None
    assert 85 <= forecast["used_pct"] < 90
    assert forecast["growth_bytes_per_day"] == pytest.approx(0.5 * forecasting.GIB, rel=0.01)


def test_sandbox_free_storage_follows_the_growth(moto_server) -> None:
    """Issue 10 #11: after the demo instance grew 100 -> 135 GiB the guard must see it emptier, not fuller (89.6%)."""
    from sandbox.rds_storage_guard_data import StorageModel, publish_free_storage
    from toilless.sops.rds_storage_guard import forecasting, growth_plan, storage_policy

    rds = moto_server.client("rds")
    cloudwatch = moto_server.client("cloudwatch")
    now = datetime.now(UTC)
    seeded_at = now - timedelta(hours=3)
    seed_rds_instance(
        rds, cloudwatch, "grown-db", allocated_gib=100, used_pct=86.0, growth_gib_per_day=0.5, now=seeded_at
    )
    model = StorageModel("grown-db", 100, 86.0, 0.5, seeded_at)
    hook = RdsHook(aws_conn_id="aws_default")

    def used_pct() -> float:
        description = hook.describe_instance("grown-db")
        history = hook.free_storage_history(
            ["grown-db"], start=now - timedelta(days=7, hours=1), end=now + timedelta(minutes=1), period_seconds=3600
        )
        instance = forecasting.instance_from_description(description, history["grown-db"], None)
        forecast = growth_plan.decide(instance, storage_policy.StoragePolicy(), now=now).forecast
        assert forecast is not None
        return forecast["used_pct"]

    before = used_pct()
    rds.modify_db_instance(DBInstanceIdentifier="grown-db", AllocatedStorage=135, ApplyImmediately=True)
    publish_free_storage(rds, cloudwatch, model, now=now)
    after = used_pct()

    assert 86 <= before < 87
    # 86.06 GiB of data in 135 GiB.
    assert after == pytest.approx(100 * (86 + 0.5 * 3 / 24) / 135, abs=0.1)


def test_hostile_params_fail_the_run_at_once_and_grow_nothing(guard, slack_sink) -> None:
    """Issue 10 #3: auto_grow=true, growth_step_pct=60000, cap_gib=1e9 gave `grow_now 60100 GiB` with no approval."""
    guard.seed("hostile-db", allocated_gib=100, used_pct=95.0, growth_gib_per_day=0.5)
    dag_run, states = guard.run(instance_ids=["hostile-db"], auto_grow=True, growth_step_pct=60000, cap_gib=10**9)

    assert dag_run.state == "failed"
    assert states["decide_action"] == "failed"
    assert states["expand_allocated_storage"] in ("upstream_failed", "skipped")
    decide = next(ti for ti in dag_run.get_task_instances() if ti.task_id == "decide_action")
    assert decide.try_number == 1  # refused, not retried
    assert guard.describe("hostile-db")["AllocatedStorage"] == 100
    failures = " ".join(message["text"] for message in slack_sink.messages())
    assert "would loosen the configured policy" in failures


def test_emptied_form_fields_run_like_the_defaults(guard, set_variable) -> None:
    """Issue 13: instance ids, tag filter and dry run cleared in the trigger form arrive as null; the run must
    behave as with the defaults ([], {}, False): the configured instances, no extra tag condition, not a dry run."""
    set_variable(
        "toilless_rds_storage_guard", {**NO_WINDOW, "instance_ids": ["null-db"], "policy": {"auto_grow": True}}
    )
    guard.seed("null-db", allocated_gib=100, used_pct=93.0, growth_gib_per_day=0.5)
    states = guard.run_successfully(instance_ids=None, tag_filter=None, dry_run=None)
    assert states["expand_allocated_storage"] == "success"
    assert guard.describe("null-db")["AllocatedStorage"] == 144
    assert "[dry run]" not in report_text(guard)
