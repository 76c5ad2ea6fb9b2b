"""aws_cost_review end to end (dag.test()): moto serves Cost Explorer, Stubber serves Cost Anomaly Detection.

moto 5.2.5 has no ``get_anomalies``: those responses come from botocore's Stubber on a real ``ce`` client built by
the hook, so requests and responses are validated against the real service model. ``get_cost_and_usage`` goes
to the moto server over HTTP (results queued through moto's API, two pages linked by NextPageToken). The two are
joined by patching the hook's client with a router that also records every call.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest
import requests
import time_machine

from sandbox.aws_cost_review_data import (
    AS_OF,
    EXPECTED_FLAGGED,
    REPO_NAME,
    anomaly_pages,
    cost_pages,
)

pytestmark = pytest.mark.integration

DAG_ID = "aws_cost_review"
DAG_FILE = Path(__file__).resolve().parents[3] / "dags" / f"{DAG_ID}.py"


@pytest.fixture
def review_day() -> Iterator[datetime]:
    """The clock on the day after the fixed AS_OF, so the run's date (and Cost Explorer's 13-month history, which
    the review now enforces against it) does not depend on the day the suite runs. Ticking: Airflow needs time to pass.
    """
    moment = datetime.combine(date.fromisoformat(AS_OF) + timedelta(days=1), time(12), tzinfo=UTC)
    with time_machine.travel(moment, tick=True):
        yield moment


@pytest.fixture
def run_review(airflow_db: Path) -> Any:
    """dag.test() of this DAG alone: parsing only its file keeps the test independent of other DAGs' state."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAG_FILE))
    assert not bag.import_errors, bag.import_errors
    dag = bag.get_dag(DAG_ID)

    def _run(conf: dict[str, Any], *, retries: int | None = None) -> Any:
        if retries is not None:  # a failure test need not wait out the production retry delays
            for task in dag.tasks:
                task.retries = retries
        return dag.test(run_conf=conf)

    return _run


class RecordingRouter:
    """A ``ce`` client: ``get_anomalies`` goes to the stubbed client, everything else to moto; calls recorded."""

    def __init__(self, real: Any, stubbed: Any, calls: list[tuple[str, dict[str, Any]]]) -> None:
        self._real, self._stubbed, self._calls = real, stubbed, calls

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._stubbed if name == "get_anomalies" else self._real, name)
        if not name.startswith("get_"):
            return target

        def call(**kwargs: Any) -> Any:
            self._calls.append((name, copy.deepcopy(kwargs)))
            return target(**kwargs)

        return call


@pytest.fixture
def ce_calls(moto_server, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[list, Any]]:
    """Queue the cost pages in moto, stub get_anomalies, and record every Cost Explorer call of the DAG."""
    from botocore.stub import Stubber

    from toilless.hooks.cost_explorer import CostExplorerHook

    response = requests.post(
        f"{moto_server.url}/moto-api/static/ce/cost-and-usage-results", json={"results": cost_pages()}, timeout=10
    )
    assert response.status_code == 201
    stubbed = CostExplorerHook(aws_conn_id="aws_default").get_client_type()
    stubber = Stubber(stubbed)
    calls: list[tuple[str, dict[str, Any]]] = []
    original = CostExplorerHook.conn

    def routed(self: CostExplorerHook) -> RecordingRouter:
        return RecordingRouter(original.func(self), stubbed, calls)

    prop = cached_property(routed)
    prop.__set_name__(CostExplorerHook, "conn")
    monkeypatch.setattr(CostExplorerHook, "conn", prop)
    with stubber:
        yield calls, stubber
    stubber.assert_no_pending_responses()


def queue_anomalies(stubber: Any, since: str, as_of: str) -> None:
    first, second = anomaly_pages()
    base = {
        "DateInterval": {"StartDate": since, "EndDate": as_of},
        "TotalImpact": {"NumericOperator": "GREATER_THAN", "StartValue": 120.0},
    }
    stubber.add_response("get_anomalies", first, expected_params=base)
    stubber.add_response("get_anomalies", second, expected_params={**base, "NextPageToken": "anomalies-2"})


@pytest.fixture
def report_root(tmp_path: Path, set_variable) -> Path:
    set_variable("toilless_aws_cost_review", {"report_dir": str(tmp_path / "reports")})
    return tmp_path / "reports"


def run_folder(report_root: Path, dag_run: Any) -> Path:
    """The run's report folder: <report_dir>/<run_id made file-name safe>/."""
    folder = report_root / re.sub(r"[^A-Za-z0-9_.-]+", "_", dag_run.run_id)
    assert folder.is_dir(), sorted(report_root.iterdir())
    return folder


def test_review_flags_services_and_anomalies_and_files_once(
    review_day, run_review, ce_calls, slack_sink, fake_github, report_root: Path, set_connection
) -> None:
    calls, stubber = ce_calls
    set_connection("slack_api", slack_sink.api_connection())  # so the chart is uploaded too
    fake_github.add_issue(REPO_NAME, "Cost optimisation", "The epic.")  # issue #1: the configured epic
    queue_anomalies(stubber, "2026-11-20", AS_OF)
    queue_anomalies(stubber, "2026-11-20", AS_OF)  # the rerun reads them again

    first = run_review({"as_of": AS_OF})
    assert first.state == "success"

    # One Cost Explorer query: two calls that differ only by NextPageToken (the second page).
    cost_calls = [kwargs for name, kwargs in calls if name == "get_cost_and_usage"]
    assert len(cost_calls) == 2
    assert "NextPageToken" not in cost_calls[0]
    assert cost_calls[1].pop("NextPageToken") == "services-2"
    assert cost_calls[0] == cost_calls[1]
    assert cost_calls[0]["TimePeriod"] == {"Start": "2026-08-01", "End": AS_OF}
    assert cost_calls[0]["GroupBy"] == [{"Type": "DIMENSION", "Key": "SERVICE"}]
    assert [name for name, _ in calls].count("get_anomalies") == 2

    folder = run_folder(report_root, first)
    services = json.loads((folder / "services.json").read_text())
    flagged = [(s["service"], s["reason"]) for s in services["services"] if s["flagged"]]
    assert flagged == EXPECTED_FLAGGED
    assert services["pages"] == 2
    anomalies = json.loads((folder / "anomalies.json").read_text())
    assert [(a["anomaly_id"], a["flagged"], a["open"]) for a in anomalies["anomalies"]] == [
        ("anomaly-rds", True, True),
        ("anomaly-lambda", False, True),
        ("anomaly-small", False, False),
    ]

    # The ranked report reached the finops channel.
    (message,) = slack_sink.messages("finops")
    table = next(
        b["text"]["text"] for b in message["blocks"] if "Services over baseline" in b.get("text", {}).get("text", "")
    )
    positions = [table.index(name) for name, _ in EXPECTED_FLAGGED]
    assert positions == sorted(positions), table
    assert "Amazon Simple Storage Service" not in table  # +200% but only $44 over
    assert "anomaly-rds" in message["text"]
    assert "db.r6g.2xlarge" in message["text"]
    assert "daily run rate" in message["text"]

    # The chart exists, is a PNG, and was uploaded through the Slack API connection.
    chart = folder / "cost_trend.png"
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    uploads = [m for m in slack_sink.messages() if m["kind"] == "file"]
    assert len(uploads) == 1
    assert uploads[0]["files"][0]["bytes"] == chart.stat().st_size

    # One issue per finding, under the epic, each with its fingerprint marker.
    issues = fake_github.issues(REPO_NAME)[1:]
    assert len(issues) == len(EXPECTED_FLAGGED) + 1
    assert all("toilless-fingerprint: aws-cost-review/" in issue["body"] for issue in issues)
    assert all("Part of #1" in issue["body"] for issue in issues)
    epic = fake_github.issues(REPO_NAME)[0]
    assert sorted(epic["sub_issue_ids"]) == sorted(issue["id"] for issue in issues)
    assert any("anomaly-rds" in issue["body"] for issue in issues)

    # A rerun for the same period files nothing new and says the issues exist.
    slack_sink.clear()
    second = run_review({"as_of": AS_OF})
    assert second.state == "success"
    assert [name for name, _ in calls].count("get_cost_and_usage") == 4  # again one query of two pages
    assert len(fake_github.issues(REPO_NAME)) == len(issues) + 1
    (rerun,) = slack_sink.messages("finops")
    assert rerun["text"].count("already filed") == len(issues)


def test_nothing_to_see_is_reported_briefly(
    review_day, run_review, moto_server, monkeypatch, slack_sink, report_root
) -> None:
    """No cost results queued (moto answers empty) and no anomalies: one short line, no chart, no issue."""
    from botocore.stub import Stubber

    from toilless.hooks.cost_explorer import CostExplorerHook

    stubbed = CostExplorerHook(aws_conn_id="aws_default").get_client_type()
    stubber = Stubber(stubbed)
    # A Monday review reads anomalies since Friday; the stub checks the request says so.
    stubber.add_response(
        "get_anomalies",
        {"Anomalies": []},
        expected_params={
            "DateInterval": {"StartDate": "2026-11-20", "EndDate": AS_OF},
            "TotalImpact": {"NumericOperator": "GREATER_THAN", "StartValue": 120.0},
        },
    )
    original = CostExplorerHook.conn
    prop = cached_property(lambda self: RecordingRouter(original.func(self), stubbed, []))
    prop.__set_name__(CostExplorerHook, "conn")
    monkeypatch.setattr(CostExplorerHook, "conn", prop)
    with stubber:
        dag_run = run_review({"as_of": AS_OF, "dry_run": True})
    assert dag_run.state == "success"
    (message,) = slack_sink.messages("finops")
    assert "nothing to see" in message["text"]
    assert len(message["blocks"]) == 1
    assert not (run_folder(report_root, dag_run) / "cost_trend.png").exists()
    stubber.assert_no_pending_responses()


def test_sandbox_seed_serves_a_whole_review(
    run_review, moto_server, slack_sink, set_connection, set_variable, tmp_path: Path
) -> None:
    """What `make run` gets: the aws_cost_review seeder (moto + GetAnomalies stand-in), no stubs."""
    from sandbox.service import SandboxContext
    from sandbox.services.aws_cost_review import CONN_ID, AwsCostReviewService

    ctx = SandboxContext(home=tmp_path / "sandbox", preferred_ports=False, published={"moto": moto_server})
    service = AwsCostReviewService()
    service.start(ctx)
    try:
        for conn_id, connection in service.connections(ctx).items():
            set_connection(conn_id, connection)
        overrides = json.loads(service.variables(ctx)["toilless_aws_cost_review"])
        set_variable("toilless_aws_cost_review", {**overrides, "report_dir": str(tmp_path / "reports")})
        # The first as-of date the seeder prepared (that of the run Airflow schedules on unpause).
        dag_run = run_review({"dry_run": True, "as_of": service.as_of_dates[0].isoformat()})
    finally:
        service.stop()
    assert overrides == {"aws_conn_id": CONN_ID}
    assert dag_run.state == "success"
    (message,) = slack_sink.messages("finops")
    assert "Amazon Relational Database Service" in message["text"]
    assert "anomaly-rds" in message["text"]
    assert message["text"].count("would file (dry run)") == 0  # no GitHub connection: drafts, not filings
    assert message["text"].count("draft (no GitHub connection)") == 4
    folder = run_folder(tmp_path / "reports", dag_run)
    assert len(list((folder / "issues").glob("*.md"))) == 4


def test_github_down_still_reports_the_findings(
    review_day, run_review, ce_calls, slack_sink, fake_github, report_root: Path
) -> None:
    """GitHub failing fails file_issues (and the run), but the ranked report still reaches finops."""
    _, stubber = ce_calls
    queue_anomalies(stubber, "2026-11-20", AS_OF)
    fake_github.fail_with_status = 500

    dag_run = run_review({"as_of": AS_OF}, retries=0)

    assert dag_run.state == "failed"
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert states["file_issues"] == "failed"
    assert states["post_report"] == "success"
    assert states["upload_chart"] == "upstream_failed"
    (report,) = slack_sink.messages("finops")
    assert "Drafting or filing issues FAILED" in report["text"]
    assert "Amazon Relational Database Service" in report["text"]
    failures = [m for m in slack_sink.messages() if "file_issues" in m["text"] and "failed" in m["text"].lower()]
    assert len(failures) == 1  # the shared failure notifier told the owner's channel once
    assert fake_github.issues(REPO_NAME) == []
