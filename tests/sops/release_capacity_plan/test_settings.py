"""A run's settings: Params only tighten the configuration; bad input is refused with the rule, before anything runs."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.release_capacity_plan_data import SEED_PARAMS
from toilless.common.config import LooseningParamError, read_defaults
from toilless.common.errors import InvalidInput
from toilless.sops.release_capacity_plan.settings import resolve


def _resolve(**params: Any) -> dict[str, Any]:
    return resolve(read_defaults("release_capacity_plan"), {**SEED_PARAMS, **params})


def test_seed_params_resolve_with_the_configured_defaults() -> None:
    settings = _resolve()
    assert settings["namespace"] == "shop"
    assert settings["deployments"] == ["app"]
    assert settings["figures"]["users_per_replica"] == 500
    assert settings["figures"]["memory_step_bytes"] == 64 * 2**20
    assert settings["apply"]["enabled"] is False  # off by default
    assert settings["kubernetes_version"] == "1.33"
    assert settings["new_components"][0]["memory"] == 2**30


def test_a_param_may_tighten() -> None:
    settings = _resolve(headroom_pct=20, users_per_replica=400, max_replicas=10, apply=False)
    assert settings["figures"]["headroom_pct"] == 20
    assert settings["figures"]["users_per_replica"] == 400
    assert any("headroom_pct = 20" in note for note in settings["notes"])


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"users_per_replica": 800}, id="more-users-per-replica"),
        pytest.param({"max_replicas": 500}, id="higher-cap"),
        pytest.param({"apply": True}, id="apply-when-off"),
        pytest.param({"file_issue": True}, id="github-when-off"),
        pytest.param({"approval_timeout_minutes": 600}, id="longer-approval-wait"),
    ],
)
def test_a_param_may_not_loosen(params: dict[str, Any]) -> None:
    with pytest.raises(LooseningParamError, match="Params may only tighten"):
        _resolve(**params)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        pytest.param({"expected_concurrent_users": -1}, "at least 0", id="negative-users"),
        pytest.param({"current_concurrent_users": None}, "whole number of users", id="no-current-users"),
        pytest.param({"expected_concurrent_users": "2600"}, "whole number of users", id="users-as-text"),
        pytest.param({"release": None}, "Param release", id="no-release"),
        pytest.param({"release": "../../etc"}, "Param release", id="release-path-traversal"),
        pytest.param({"namespace": "kube-system"}, "allowed_namespaces", id="namespace-not-allowed"),
        pytest.param({"namespace": "Shop"}, "DNS-1123", id="namespace-capitals"),
        pytest.param({"deployments": ["app", "app"]}, "named twice", id="duplicate"),
        pytest.param({"deployments": ["app_v2"]}, "DNS-1123", id="deployment-underscore"),
        pytest.param({"new_components": [{"name": "p", "memory": "512mb", "cpu": "1"}]}, "512Mi", id="512mb"),
        pytest.param({"new_components": [{"name": "app", "memory": "1Gi", "cpu": "1"}]}, "existing", id="clash"),
        pytest.param({"code_changes": ["SHOP-1"]}, "code_changes", id="code-changes-not-objects"),
        pytest.param({"headroom_pct": float("inf")}, "finite", id="infinite-headroom"),
    ],
)
def test_bad_input_is_refused(params: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        _resolve(**params)


HOSTILE_VALUES: list[Any] = [
    None,
    True,
    -1,
    0,
    2**63,
    1e308,
    float("nan"),
    "",
    "512mb",
    "order_processor",
    "../../etc/passwd",
    "<!channel>",
    "x" * 5000,
    [],
    [None],
    [1, 2],
    ["app", {"name": "x"}],
    {},
    {"name": None},
    [{"name": "p", "memory": ["1Gi"], "cpu": {"a": 1}}],
    [{"name": "p", "memory": "1Gi", "cpu_factor_of_app": "2"}],
    [{"kind": ["x"], "ticket": {"a": 1}}],
]


def test_seeded_hostile_params_are_accepted_or_refused_clearly_never_crash() -> None:
    """Any Param value the API could carry (the REST conf is validated by the schema, but a Variable or a future
    form change may not be): resolve() returns settings or raises InvalidInput, nothing else."""
    import random

    rng = random.Random(20)
    keys = [*SEED_PARAMS, "namespace", "deployments", "headroom_pct", "max_replicas", "apply", "file_issue"]
    keys += ["approval_timeout_minutes", "memory_utilisation_pct", "cpu_growth_per_user_pct", "users_per_replica"]
    refused = 0
    for _ in range(600):
        params = {key: rng.choice(HOSTILE_VALUES) for key in rng.sample(keys, rng.randint(1, 4))}
        try:
            _resolve(**params)
        except InvalidInput:
            refused += 1
    assert refused > 300  # most hostile combinations are refused (and the rest resolved without crashing)
