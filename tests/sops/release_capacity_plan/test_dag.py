"""release_capacity_plan end to end (dag.test) against the Kubernetes API emulator and the Slack sink.

Each test gets a namespace of its own on the shared emulator; the Deployments are created through the API, as on a
cluster. The approval path (a person answers in Airflow) is exercised at the step: test_apply.py.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sandbox.kubernetes import KubernetesEmulatorServer
from sandbox.release_capacity_plan_data import SEED_PARAMS, create_deployment, deployment_body
from sandbox.slack_sink import SlackSink
from tests.fixtures.slack_checks import markup_problems

pytestmark = pytest.mark.integration

DAG_ID = "release_capacity_plan"


REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def run_dag(airflow_db: Path) -> Callable[..., Any]:
    """dag.test() of this DAG, parsed from its own file for each run (one DAG object reused across dag.test() runs
    carried one run's conf into the next here), so another DAG's import error cannot fail these tests either."""

    def _run(dag_id: str, run_conf: dict[str, Any] | None = None) -> Any:
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=str(REPO / "dags" / f"{dag_id}.py"))
        assert not bag.import_errors, bag.import_errors
        return bag.get_dag(dag_id).test(run_conf=run_conf or {})

    return _run


class Release:
    def __init__(self, k8s: KubernetesEmulatorServer, sink: SlackSink, folder: Path, configure: Callable) -> None:
        self.k8s, self.sink, self.folder, self.configure = k8s, sink, folder, configure
        self.namespace = f"shop-{uuid.uuid4().hex[:8]}"

    def conf(self, **changes: Any) -> dict[str, Any]:
        return {**SEED_PARAMS, "namespace": self.namespace, "deployments": ["app"], **changes}

    def patches(self, name: str = "app") -> list[Any]:
        return self.k8s.deployment_patches(self.namespace, name)


@pytest.fixture
def release(
    kubernetes_emulator: KubernetesEmulatorServer,
    slack_sink: SlackSink,
    set_variable: Callable[[str, Any], None],
    tmp_path: Path,
) -> Release:
    env = Release(kubernetes_emulator, slack_sink, tmp_path / "as-built", None)

    def configure(**overrides: Any) -> None:
        settings = {"allowed_namespaces": [env.namespace], "as_built_dir": str(env.folder), **overrides}
        set_variable(f"toilless_{DAG_ID}", settings)

    env.configure = configure
    configure()
    create_deployment(kubernetes_emulator.url, deployment_body(env.namespace, "app"))
    return env


def _states(run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def _xcom(run: Any, task_id: str) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=run.dag_id, run_id=run.run_id, task_id=task_id, key="return_value")
            .one_or_none()
        )
        return XComModel.deserialize_value(row) if row is not None else None


def test_seed_release_is_planned_rendered_and_written_without_changing_the_cluster(
    release: Release, run_dag: Callable[..., Any]
) -> None:
    run = run_dag(DAG_ID, run_conf=release.conf())
    states = _states(run)
    assert str(run.state) == "success", states
    capacity = _xcom(run, "plan_capacity")
    [app] = capacity["deployments"]
    assert (app["replicas_before"], app["replicas"]) == (3, 6)
    assert app["containers"][0]["memory_request"] == "1088Mi"
    rendered = _xcom(run, "render_manifests")
    assert rendered["schema_version"] == "1.33"
    assert rendered["validated"] == 3  # the app after the patch, the new order processor, the HPA
    assert "name: order-processor" in rendered["manifests_yaml"]
    # Applying is off by default: nothing asked, nothing patched.
    assert states["request_approval"] == "skipped"
    assert states["apply_capacity"] == "skipped"
    assert release.patches() == []

    document = (release.folder / "2026.12.1" / "as-built.md").read_text(encoding="utf-8")
    for section in (
        "## Stakeholders",
        "### feature",
        "SHOP-101",
        "## Data changes",
        "## System changes",
        "## Design decisions",
        "## Tests",
        "## Deployment notes",
        "## Deployment files",
    ):
        assert section in document
    assert "| replicas | 3 | 6 |" in document
    # The seed's hand-written mistakes cannot appear: the manifests are data, rendered and validated.
    assert "512mb" not in document
    assert "order_processor" not in document
    assert not re.search(r"(?m)^\s*(Replicas|ApiVersion):", document)
    assert re.search(r"(?m)^\s*replicas: 6$", document)

    [summary] = release.sink.messages("non_urgent")
    assert "replicas: 3 -&gt; 6" in summary["text"]
    assert "1Gi -&gt; 1088Mi" in summary["text"]
    assert markup_problems(summary, ["127.0.0.1"]) == []


def test_dry_run_with_apply_enabled_changes_nothing(release: Release, run_dag: Callable[..., Any]) -> None:
    release.configure(apply={"enabled": True})
    run = run_dag(DAG_ID, run_conf=release.conf(dry_run=True))
    states = _states(run)
    assert str(run.state) == "success", states
    assert states["request_approval"] == "skipped"
    applied = _xcom(run, "apply_capacity")
    assert applied["dry_run"] is True
    [result] = applied["results"]
    assert result["applied"] is False
    assert result["gate"]["check"] == "dry_run"
    assert release.patches() == []
    assert release.k8s.deployment(release.namespace, "app")["spec"]["replicas"] == 3
    assert _xcom(run, "verify_rollout")["status"] == "nothing_applied"
    texts = [m["text"] for m in release.sink.messages("non_urgent")]
    assert any("dry run: nothing changed" in text for text in texts)


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        pytest.param(
            {"new_components": [{"name": "order-processor", "memory": "512mb", "cpu": "1"}]},
            "did you mean 512Mi",
            id="512mb",
        ),
        pytest.param(
            {"new_components": [{"name": "order_processor", "memory": "1Gi", "cpu": "1"}]},
            "'order-processor'",
            id="order_processor",
        ),
        pytest.param({"deployments": ["app", "missing"]}, "'missing' does not exist", id="missing-deployment"),
        pytest.param({"namespace": "kube-system"}, "not one this SOP may plan for", id="namespace-not-allowed"),
        pytest.param({"apply": True}, "would loosen the configured policy", id="apply-when-configured-off"),
    ],
)
def test_bad_input_fails_at_once_and_changes_nothing(
    release: Release, run_dag: Callable[..., Any], conf: dict[str, Any], message: str
) -> None:
    run = run_dag(DAG_ID, run_conf=release.conf(**conf))
    assert str(run.state) == "failed"
    failed = [ti for ti in run.get_task_instances() if str(ti.state) == "failed"]
    assert [ti.try_number for ti in failed] == [1]  # not retried
    assert any(message in m["text"] for m in release.sink.messages()), release.sink.messages()
    assert release.patches() == []
    assert not (release.folder / "2026.12.1").exists()
    assert not [m for m in release.sink.messages("non_urgent") if "Release capacity plan:" in m["text"]]


@pytest.mark.parametrize(
    "conf",
    [
        pytest.param({"expected_concurrent_users": -1}, id="negative-users"),
        pytest.param({"current_concurrent_users": 0}, id="no-current-users"),
        pytest.param({"headroom_pct": -10}, id="negative-headroom"),
        pytest.param({"namespace": "Shop_1"}, id="namespace-not-a-label"),
        pytest.param({"deployments": ["App"]}, id="deployment-not-a-name"),
    ],
)
def test_the_form_refuses_out_of_range_params_before_a_run_exists(
    release: Release, run_dag: Callable[..., Any], conf: dict[str, Any]
) -> None:
    """The Params' JSON schema (what the UI form and the REST API check: 400) refuses these before any task."""
    from airflow.sdk.definitions.param import ParamValidationError

    with pytest.raises(ParamValidationError):
        run_dag(DAG_ID, run_conf=release.conf(**conf))
    assert release.patches() == []
    assert not (release.folder / "2026.12.1").exists()


class ApproverThread:
    """A person answering the approval request in Airflow, once the request exists: what the REST API's
    ``PATCH .../hitlDetails`` (the UI's Required Actions) does, against this session's metadata DB: record the answer
    and resume the parked task. dag.test() keeps the run alive until a task parked in awaiting_input is resumed."""

    def __init__(self, dag_id: str, option: str) -> None:
        import threading

        self.dag_id, self.option = dag_id, option
        self.answered = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="approver", daemon=True)

    def _run(self) -> None:
        from airflow.models.hitl import HITLDetail
        from airflow.models.taskinstance import TaskInstance
        from airflow.models.trigger import handle_event_submit
        from airflow.triggers.base import TriggerEvent
        from airflow.utils.session import create_session
        from airflow.utils.state import TaskInstanceState

        while not self._stop.wait(0.5):
            with create_session() as session:
                found = (
                    session.query(HITLDetail, TaskInstance)
                    .join(TaskInstance, TaskInstance.id == HITLDetail.ti_id)
                    .filter(TaskInstance.dag_id == self.dag_id, TaskInstance.task_id == "request_approval")
                    .filter(TaskInstance.state == TaskInstanceState.AWAITING_INPUT)
                    .filter(HITLDetail.responded_at.is_(None))
                    .one_or_none()
                )
                if found is None:
                    continue
                detail, task_instance = found
                detail.chosen_options = [self.option]
                detail.responded_by = {"id": "release-manager", "name": "release-manager"}
                detail.responded_at = datetime.now(UTC)
                detail.params_input = {}
                session.add(detail)
                handle_event_submit(
                    TriggerEvent(detail.as_resume_event_payload()), task_instance=task_instance, session=session
                )
            self.answered.set()
            return

    def __enter__(self) -> ApproverThread:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def test_approved_apply_patches_once_and_the_rollout_is_verified(release: Release, run_dag: Callable[..., Any]) -> None:
    from sandbox.release_capacity_plan_data import RolloutStandIn

    release.configure(apply={"enabled": True, "verify_timeout_seconds": 30, "verify_poll_seconds": 0.5})
    with ApproverThread(DAG_ID, "Approve") as approver, RolloutStandIn(release.k8s.url, release.namespace, ["app"]):
        run = run_dag(DAG_ID, run_conf=release.conf(approval_timeout_minutes=5))
    states = _states(run)
    assert approver.answered.is_set()
    assert str(run.state) == "success", states
    assert states["request_approval"] == "success"
    assert len(release.patches()) == 1
    assert release.k8s.deployment(release.namespace, "app")["spec"]["replicas"] == 6
    assert _xcom(run, "verify_rollout")["status"] == "rolled_out"
    [request] = release.sink.messages("urgent")
    assert "Approval needed" in request["text"]
    assert "replicas: 3 -&gt; *6*" in request["text"]
    outcome = [m["text"] for m in release.sink.messages("non_urgent") if "applied" in m["text"]]
    assert outcome
    assert "rollout: rolled_out" in outcome[-1]


def test_rejected_plan_changes_nothing(release: Release, run_dag: Callable[..., Any]) -> None:
    release.configure(apply={"enabled": True})
    with ApproverThread(DAG_ID, "Reject") as approver:
        run = run_dag(DAG_ID, run_conf=release.conf(approval_timeout_minutes=5))
    states = _states(run)
    assert approver.answered.is_set()
    assert states["apply_capacity"] == "skipped", states
    assert release.patches() == []
