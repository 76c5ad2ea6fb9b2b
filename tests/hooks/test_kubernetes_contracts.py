"""The Kubernetes contracts Toilless checks before sending (DNS-1123 names, replicas, revisions, tailLines) and the
summaries it reads back (pod health, rollout status, kubectl's rollback patch)."""

from __future__ import annotations

from typing import Any

import pytest

from toilless.common import kubernetes_contracts as contracts
from toilless.common.errors import InvalidInput


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("web", id="plain"),
        pytest.param("a", id="one-char"),
        pytest.param("web-2", id="digit-end"),
        pytest.param("0web", id="digit-start"),
        pytest.param("a" * 63, id="63-chars"),
    ],
)
def test_dns1123_label_accepts(value: str) -> None:
    assert contracts.dns1123_label(value) == value


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("Web", id="uppercase"),
        pytest.param("-web", id="dash-start"),
        pytest.param("web-", id="dash-end"),
        pytest.param("web.shop", id="dot"),
        pytest.param("a" * 64, id="64-chars"),
        pytest.param("web\n", id="newline"),
        pytest.param("../etc", id="path"),
        pytest.param(7, id="number"),
        pytest.param(None, id="none"),
    ],
)
def test_dns1123_label_refuses(value: Any) -> None:
    with pytest.raises(contracts.KubernetesContractError):
        contracts.dns1123_label(value, "namespace")


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        pytest.param("web.shop.example", True, id="dotted"),
        pytest.param("web", True, id="label"),
        pytest.param("web..shop", False, id="empty-part"),
        pytest.param(".web", False, id="dot-start"),
        pytest.param("web/x", False, id="slash"),
        pytest.param("a" * 253, True, id="253-one-part-kubernetes-does-not-cap-parts"),
        pytest.param("a.\n", False, id="trailing-newline"),
        pytest.param(".".join(["a" * 63] * 4)[:253].rstrip("."), True, id="253-chars"),
        pytest.param(".".join(["a" * 63] * 5), False, id="over-253"),
    ],
)
def test_dns1123_subdomain(value: str, ok: bool) -> None:
    if ok:
        assert contracts.dns1123_subdomain(value) == value
    else:
        with pytest.raises(contracts.KubernetesContractError):
            contracts.dns1123_subdomain(value)


@pytest.mark.parametrize(
    ("value", "ok"),
    [pytest.param("web", True, id="letter-start"), pytest.param("1web", False, id="digit-start")],
)
def test_service_names_are_dns1035(value: str, ok: bool) -> None:
    if ok:
        assert contracts.dns1035_label(value) == value
    else:
        with pytest.raises(contracts.KubernetesContractError, match="DNS-1035"):
            contracts.dns1035_label(value)


@pytest.mark.parametrize(
    ("check", "value", "ok"),
    [
        pytest.param(contracts.replicas, 0, True, id="replicas-zero"),
        pytest.param(contracts.replicas, 1000, True, id="replicas-cap"),
        pytest.param(contracts.replicas, 1001, False, id="replicas-over-cap"),
        pytest.param(contracts.replicas, -1, False, id="replicas-negative"),
        pytest.param(contracts.replicas, 2.0, False, id="replicas-float"),
        pytest.param(contracts.replicas, True, False, id="replicas-bool"),
        pytest.param(contracts.replicas, "3", False, id="replicas-string"),
        pytest.param(contracts.revision, 1, True, id="revision-one"),
        pytest.param(contracts.revision, 0, False, id="revision-zero"),
        pytest.param(contracts.tail_lines, 10_000, True, id="tail-cap"),
        pytest.param(contracts.tail_lines, 10_001, False, id="tail-over-cap"),
        pytest.param(contracts.tail_lines, 0, False, id="tail-zero"),
    ],
)
def test_numbers(check: Any, value: Any, ok: bool) -> None:
    if ok:
        assert check(value) == value
    else:
        with pytest.raises(InvalidInput):
            check(value)


def _container(**fields: Any) -> dict[str, Any]:
    return {"name": "app", "image": "shop/web:1", "ready": False, "restartCount": 0, **fields}


@pytest.mark.parametrize(
    ("container", "expected"),
    [
        pytest.param(
            _container(ready=True, state={"running": {}}),
            {"ready": True, "crash_loop": False, "oom_killed": False, "image_pull_error": False, "restarts": 0},
            id="healthy",
        ),
        pytest.param(
            _container(
                restartCount=5,
                state={"waiting": {"reason": "CrashLoopBackOff"}},
                lastState={"terminated": {"reason": "OOMKilled"}},
            ),
            {"ready": False, "crash_loop": True, "oom_killed": True, "image_pull_error": False, "restarts": 5},
            id="oom-crash-loop",
        ),
        pytest.param(
            _container(state={"waiting": {"reason": "ImagePullBackOff"}}),
            {"ready": False, "crash_loop": False, "oom_killed": False, "image_pull_error": True, "restarts": 0},
            id="image-pull",
        ),
        pytest.param(
            _container(state={"waiting": {"reason": "ErrImagePull"}}),
            {"image_pull_error": True},
            id="err-image-pull",
        ),
    ],
)
def test_pod_health(container: dict[str, Any], expected: dict[str, Any]) -> None:
    pod = {"metadata": {"name": "web-1"}, "status": {"phase": "Running", "containerStatuses": [container]}}
    health = contracts.pod_health(pod)
    assert {key: health[key] for key in expected} == expected


def test_pod_health_of_a_pod_without_status_is_not_ready() -> None:
    health = contracts.pod_health({"metadata": {"name": "web-1"}})
    assert health["ready"] is False
    assert health["phase"] == "Unknown"


@pytest.mark.parametrize(
    ("generation", "status", "complete"),
    [
        pytest.param(
            2,
            {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3},
            True,
            id="done",
        ),
        pytest.param(
            3,
            {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3},
            False,
            id="not-observed-yet",
        ),
        pytest.param(
            2,
            {"observedGeneration": 2, "replicas": 4, "updatedReplicas": 3, "availableReplicas": 3},
            False,
            id="old-replica-left",
        ),
        pytest.param(
            2,
            {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 1},
            False,
            id="unavailable",
        ),
    ],
)
def test_rollout_status(generation: int, status: dict[str, int], complete: bool) -> None:
    deployment = {"metadata": {"generation": generation}, "spec": {"replicas": 3}, "status": status}
    assert contracts.rollout_status(deployment)["complete"] is complete


def test_rollback_patch_is_kubectls() -> None:
    """rollback.go: template minus pod-template-hash; annotations = Deployment's skipped ones + the ReplicaSet's."""
    deployment = {
        "metadata": {
            "annotations": {
                "deployment.kubernetes.io/revision": "5",
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
                "kubernetes.io/change-cause": "deploy QA build",
                "team": "shop",
            }
        }
    }
    replica_set = {
        "metadata": {
            "annotations": {
                "deployment.kubernetes.io/revision": "4",
                "deployment.kubernetes.io/desired-replicas": "3",
                "kubernetes.io/change-cause": "release 1.4.2",
            }
        },
        "spec": {
            "template": {
                "metadata": {"labels": {"app": "web", "pod-template-hash": "abc"}},
                "spec": {"containers": [{"name": "app", "image": "shop/web:1.4.2"}]},
            }
        },
    }
    patch = contracts.rollback_patch(deployment, replica_set, extra_annotations={"toilless.io/rollback-incident": "i"})
    assert patch == [
        {
            "op": "replace",
            "path": "/spec/template",
            "value": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "shop/web:1.4.2"}]},
            },
        },
        {
            "op": "replace",
            "path": "/metadata/annotations",
            "value": {
                "deployment.kubernetes.io/revision": "5",
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
                "kubernetes.io/change-cause": "release 1.4.2",
                "toilless.io/rollback-incident": "i",
            },
        },
    ]
    assert replica_set["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] == "abc"  # not mutated


@pytest.mark.parametrize(
    ("revisions", "previous"),
    [
        pytest.param([1, 2, 3], 2, id="three"),
        pytest.param([7, 3], 3, id="unordered"),
        pytest.param([4], None, id="only-one"),
        pytest.param([], None, id="none"),
    ],
)
def test_previous_revision(revisions: list[int], previous: int | None) -> None:
    assert contracts.previous_revision(revisions) == previous


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        pytest.param("3", 3, id="number"),
        pytest.param("x", None, id="text"),
        pytest.param("-1", None, id="negative"),
        pytest.param("9" * 30, None, id="huge"),
    ],
)
def test_parse_revision_bounds_what_the_server_sent(raw: str, parsed: int | None) -> None:
    assert contracts.parse_revision({"metadata": {"annotations": {contracts.REVISION: raw}}}) == parsed
