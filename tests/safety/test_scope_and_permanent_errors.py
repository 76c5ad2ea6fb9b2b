"""Review gaps after issue 10: Params that widen scope, restart markers dated in the future, permanent API errors.

Each test here failed on the code before its fix.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from toilless.common import gate
from toilless.common.config import deep_merge, read_defaults
from toilless.common.errors import InvalidInput
from toilless.sops.order_backlog_check import restart_policy
from toilless.sops.order_backlog_check.settings import resolve_settings as resolve_backlog_settings
from toilless.sops.order_backlog_check.verdict import STUCK, Verdict
from toilless.sops.rds_storage_guard import scoping

# -- 1. scope Params may only narrow the configured scope ----------------------------------------------------------

NO_SCOPE: dict[str, Any] = {"instance_ids": [], "tag_filter": {}, "region": None}


@pytest.mark.parametrize(
    ("configured", "params"),
    [
        pytest.param({"instance_ids": ["orders-db"]}, {"instance_ids": ["billing-db"]}, id="id-outside-ids"),
        pytest.param(
            {"instance_ids": ["orders-db"]}, {"instance_ids": ["orders-db", "billing-db"]}, id="extra-id-outside-ids"
        ),
        pytest.param({"region": "eu-west-1"}, {"region": "us-east-1"}, id="other-region"),
        pytest.param({"tag_filter": {"team": "orders"}}, {"tag_filter": {"team": "billing"}}, id="other-tag-value"),
    ],
)
def test_rds_scope_param_outside_configured_scope_is_refused(configured: dict, params: dict) -> None:
    with pytest.raises(scoping.ScopeParamError) as caught:
        scoping.run_scope({**NO_SCOPE, **configured}, params)
    assert isinstance(caught.value, InvalidInput)
    assert "narrow" in str(caught.value)


@pytest.mark.parametrize(
    ("configured", "params", "ids", "tags", "automatic"),
    [
        pytest.param({"instance_ids": ["a", "b"]}, {"instance_ids": ["a"]}, ("a",), {}, True, id="subset-of-ids"),
        pytest.param({"instance_ids": ["a", "b"]}, {}, ("a", "b"), {}, True, id="configured-ids"),
        pytest.param(
            {"tag_filter": {"team": "orders"}},
            {"tag_filter": {"env": "prod"}},
            (),
            {"team": "orders", "env": "prod"},
            True,
            id="tag-filter-adds-condition",
        ),
        pytest.param(
            {"tag_filter": {"team": "*"}}, {"tag_filter": {"team": "orders"}}, (), {"team": "orders"}, True, id="pin"
        ),
        pytest.param(
            {"tag_filter": {"team": "orders"}}, {"tag_filter": {"team": "*"}}, (), {"team": "orders"}, True, id="star"
        ),
        pytest.param({}, {"instance_ids": ["any-db"]}, ("any-db",), {}, False, id="no-scope-id-needs-approval"),
        pytest.param({}, {"tag_filter": {"team": "x"}}, (), {"team": "x"}, False, id="no-scope-tags-need-approval"),
        pytest.param({}, {"region": "us-east-1"}, (), {}, False, id="no-scope-region-needs-approval"),
        pytest.param({}, {}, (), {}, True, id="configuration-selects"),
    ],
)
def test_rds_scope_params_narrow_or_lose_automatic_growth(configured, params, ids, tags, automatic) -> None:
    scope = scoping.run_scope({**NO_SCOPE, **configured}, params)
    assert (scope.instance_ids, scope.tag_filter, scope.automatic_growth) == (ids, tags, automatic)


def test_rds_alert_instance_outside_configured_ids_is_refused() -> None:
    with pytest.raises(scoping.ScopeParamError):
        scoping.run_scope({**NO_SCOPE, "instance_ids": ["orders-db"]}, {}, ["billing-db"])
    assert scoping.run_scope(NO_SCOPE, {}, ["billing-db"]).automatic_growth is True


def test_rds_requested_instance_not_matching_configured_tags_is_refused() -> None:
    with pytest.raises(scoping.ScopeParamError):
        scoping.check_in_scope(["billing-db"], [], {"team": "orders"})
    scoping.check_in_scope(["orders-db"], ["orders-db"], {"team": "orders"})


# -- 2. restart markers dated in the future are ignored -----------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@pytest.mark.parametrize(
    "ahead", [pytest.param(timedelta(days=3650), id="ten-years"), pytest.param(timedelta(hours=1), id="one-hour")]
)
def test_restart_marker_dated_in_the_future_holds_no_cooldown(ahead: timedelta, caplog) -> None:
    now = _now()
    future = now + ahead
    marker = {
        "incident": "orders-stuck-1",
        "restarted_at": future.isoformat(),
        "history": gate.encode_history([future], now=future, keep=timedelta(days=1)),
    }
    history = restart_policy.restart_history(marker, incident_key="orders-stuck-1", now=now)
    assert history.last_action_at is None
    assert history.recent_actions == ()
    assert history.incident_done is False
    policy = restart_policy.restart_gate_policy({"gate": {"cooldown_minutes": 30}})
    assert gate.check_action("restart", "orders/processor", now=now, policy=policy, history=history).allowed
    assert restart_policy.restart_already_done(marker, "orders-stuck-1", now, 24.0) is False
    assert "future" in caplog.text


def test_restart_marker_within_clock_skew_still_counts() -> None:
    now = _now()
    soon = now + timedelta(minutes=4)
    marker = {"incident": "orders-stuck-1", "restarted_at": soon.isoformat(), "history": str(int(soon.timestamp()))}
    history = restart_policy.restart_history(marker, incident_key="orders-stuck-1", now=now)
    assert history.last_action_at == soon
    assert history.recent_actions == (soon,)
    assert history.incident_done is True


def test_decode_history_drops_future_entries_when_given_now() -> None:
    now = _now()
    past, far = now - timedelta(hours=1), now + timedelta(days=400)
    text = f"{int(past.timestamp())} {int(far.timestamp())}"
    assert gate.decode_history(text, now=now) == (past,)


# -- 1b. order_backlog_check: evidence from a Param-chosen log never restarts ---------------------------------------


def _backlog_settings(tmp_path: Path, params: dict[str, Any], source: str = "kubernetes") -> dict[str, Any]:
    config = deep_merge(
        read_defaults("order_backlog_check"),
        {"log": {"source": source, "allowed_roots": [str(tmp_path)], "path": str(tmp_path / "order_processing.log")}},
    )
    return resolve_backlog_settings(config, read_defaults("toilless"), params)


def _stuck_decision(settings: dict[str, Any]) -> restart_policy.RestartDecision:
    verdict = Verdict(STUCK, ["same error 5 times"], "orders-stuck-1")
    return restart_policy.decide_restart(
        verdict,
        method="kubernetes",
        allow_restart=settings["allow_restart"],
        off_reason=settings.get("restart_off_reason"),
        marker=None,
        policy_allowed=True,
        policy_reason="allowed",
        policy_allowed_from=None,
        now=_now(),
        memory_hours=24.0,
    )


@pytest.mark.parametrize("source", ["kubernetes", "file"])
def test_backlog_param_chosen_log_diagnoses_but_never_restarts(tmp_path: Path, source: str) -> None:
    other = tmp_path / "crafted.log"
    settings = _backlog_settings(tmp_path, {"log_path": str(other)}, source)
    assert settings["log"]["source"] == "file"
    assert settings["allow_restart"] is False
    decision = _stuck_decision(settings)
    assert not decision.act
    assert "log_path" in decision.reason


def test_backlog_log_path_param_naming_the_configured_file_may_restart(tmp_path: Path) -> None:
    settings = _backlog_settings(tmp_path, {"log_path": str(tmp_path / "order_processing.log")}, "file")
    assert settings["allow_restart"] is True
    assert _stuck_decision(settings).act
    assert _backlog_settings(tmp_path, {}, "kubernetes")["allow_restart"] is True


# -- 3. permanent AWS / Kubernetes errors fail at once, transient ones are retried ---------------------------------


def _client_error(code: str, status: int, operation: str = "ModifyDBInstance") -> Exception:
    from botocore.exceptions import ClientError

    response = {
        "Error": {"Code": code, "Message": f"{code} for test"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, operation)  # type: ignore[arg-type]


def _api_exception(status: int) -> Exception:
    from kubernetes.client.exceptions import ApiException

    return ApiException(status=status, reason=f"status {status}")


def _botocore(name: str) -> Exception:
    from botocore import exceptions

    if name == "InvalidRegionError":
        return exceptions.InvalidRegionError(region_name="moon-1")
    if name == "ParamValidationError":
        return exceptions.ParamValidationError(report="Invalid type for parameter AllocatedStorage")
    return exceptions.EndpointConnectionError(endpoint_url="https://rds.eu-west-1.amazonaws.com")


@pytest.mark.parametrize(
    ("make", "permanent"),
    [
        pytest.param(lambda: _client_error("ValidationException", 400), True, id="aws-validation"),
        pytest.param(lambda: _client_error("InvalidParameterValue", 400), True, id="aws-invalid-value"),
        pytest.param(lambda: _client_error("InvalidParameterCombination", 400), True, id="aws-invalid-combination"),
        pytest.param(lambda: _client_error("StorageQuotaExceeded", 400), True, id="aws-storage-quota"),
        pytest.param(lambda: _client_error("AccessDenied", 403), True, id="aws-access-denied"),
        pytest.param(lambda: _client_error("AccessDeniedException", 400), True, id="aws-access-denied-exception"),
        pytest.param(lambda: _client_error("DBInstanceNotFound", 404), True, id="aws-not-found"),
        pytest.param(lambda: _client_error("SomeNewClientError", 400), True, id="aws-unknown-4xx"),
        pytest.param(lambda: _botocore("InvalidRegionError"), True, id="aws-invalid-region"),
        pytest.param(lambda: _botocore("ParamValidationError"), True, id="aws-param-validation"),
        pytest.param(lambda: _client_error("Throttling", 400), False, id="aws-throttling-400"),
        pytest.param(lambda: _client_error("ThrottlingException", 400), False, id="aws-throttling-exception"),
        pytest.param(lambda: _client_error("RequestLimitExceeded", 503), False, id="aws-request-limit"),
        pytest.param(lambda: _client_error("TooManyRequestsException", 429), False, id="aws-429"),
        pytest.param(lambda: _client_error("InternalFailure", 500), False, id="aws-500"),
        pytest.param(lambda: _client_error("ServiceUnavailable", 503), False, id="aws-503"),
        pytest.param(lambda: _client_error("InvalidDBInstanceState", 400), False, id="aws-instance-state-changes"),
        pytest.param(lambda: _botocore("EndpointConnectionError"), False, id="aws-network"),
        pytest.param(lambda: _api_exception(400), True, id="k8s-400"),
        pytest.param(lambda: _api_exception(401), True, id="k8s-401"),
        pytest.param(lambda: _api_exception(403), True, id="k8s-403"),
        pytest.param(lambda: _api_exception(404), True, id="k8s-404"),
        pytest.param(lambda: _api_exception(422), True, id="k8s-422"),
        pytest.param(lambda: _api_exception(409), False, id="k8s-409-conflict"),
        pytest.param(lambda: _api_exception(429), False, id="k8s-429"),
        pytest.param(lambda: _api_exception(500), False, id="k8s-500"),
        pytest.param(lambda: _api_exception(503), False, id="k8s-503"),
        pytest.param(lambda: ConnectionResetError("reset by peer"), False, id="socket-reset"),
        pytest.param(lambda: RuntimeError("anything else"), False, id="unknown-error"),
    ],
)
def test_permanent_error_classifier(make, permanent: bool) -> None:
    from toilless.common.errors import is_permanent

    error = make()
    assert is_permanent(error) is permanent
    # The same error wrapped by a hook keeps its class.
    wrapped = RuntimeError("hook failed")
    wrapped.__cause__ = error
    assert is_permanent(wrapped) is permanent


def _measure_storage_with(monkeypatch: pytest.MonkeyPatch, error: Exception) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    from toilless.hooks.rds import RdsHook

    def describe(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr(RdsHook, "describe_instances", describe)
    repo = Path(__file__).resolve().parents[2]
    bag = DagBag(dag_folder=str(repo / "dags" / "rds_storage_guard.py"))
    task = bag.dags["rds_storage_guard"].get_task("measure_storage")
    return lambda: task.python_callable(params={"instance_ids": [], "tag_filter": {}, "region": None})


def test_dag_task_permanent_aws_error_fails_at_once_with_masked_message(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.exceptions import AirflowFailException
    from botocore.exceptions import ClientError

    error = ClientError(
        {
            "Error": {
                "Code": "AccessDenied",
                "Message": "not authorized; tried postgresql://orders:S3cr3tPw@db.internal:5432/orders",
            },
            "ResponseMetadata": {"HTTPStatusCode": 403},
        },
        "DescribeDBInstances",
    )
    call = _measure_storage_with(monkeypatch, error)
    with pytest.raises(AirflowFailException) as caught:
        call()
    message = str(caught.value)
    assert "not retried" in message
    assert "AccessDenied" in message
    assert "S3cr3tPw" not in message


def test_dag_task_throttling_is_left_to_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.exceptions import ClientError

    error = ClientError(
        {"Error": {"Code": "Throttling", "Message": "Rate exceeded"}, "ResponseMetadata": {"HTTPStatusCode": 400}},
        "DescribeDBInstances",
    )
    with pytest.raises(ClientError):
        _measure_storage_with(monkeypatch, error)()


def test_transient_error_raised_while_handling_a_permanent_one_stays_transient() -> None:
    from toilless.common.errors import is_permanent

    error = ConnectionResetError("network dropped during cleanup")
    error.__context__ = _client_error("AccessDenied", 403)
    assert is_permanent(error) is False


def test_growth_refused_by_aws_storage_quota_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """expand_allocated_storage collects per-instance errors: a permanent AWS answer must not become a retry."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.exceptions import AirflowFailException

    from tests.safety.test_review_gaps import _grow_plan, _task_context
    from toilless.sops.rds_storage_guard import expansion

    def quota(self: Any, instance_id: str, **_: Any) -> dict[str, Any]:
        raise _client_error("StorageQuotaExceeded", 400)

    monkeypatch.setattr(expansion, "grow_storage_once", quota)
    repo = Path(__file__).resolve().parents[2]
    dag = DagBag(dag_folder=str(repo / "dags" / "rds_storage_guard.py")).dags["rds_storage_guard"]
    plan, measured = _grow_plan()
    with _task_context(dag, {"dry_run": False}) as context:
        with pytest.raises(AirflowFailException, match="not retried") as caught:
            dag.get_task("expand_allocated_storage").python_callable(plan, measured, **context)
    assert "StorageQuotaExceeded" in str(caught.value)
