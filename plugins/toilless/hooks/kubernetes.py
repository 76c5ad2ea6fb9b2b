"""The order processor where it runs: its log (a file with rotated siblings, or its pod) and its restart.

Kubernetes goes through the cncf-kubernetes provider's KubernetesHook (a kubeconfig in the Connection's
``kube_config`` extra, or in-cluster). A restart is ``kubectl rollout restart``: a patch of the pod template's
``kubectl.kubernetes.io/restartedAt`` annotation. The same patch records the incident it was for in
``toilless.io/restart-incident``, so the marker and the restart are one atomic write: a retry that lost the
response still sees that the restart happened.
"""

from __future__ import annotations

import logging
import subprocess
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from toilless.order_processor import (
    DEFAULT_MAX_DECOMPRESSED_BYTES,
    RunSummary,
    latest_run_lines,
    read_latest_run,
    summarize_run,
)

if TYPE_CHECKING:
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

log = logging.getLogger(__name__)

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
INCIDENT = "toilless.io/restart-incident"
#: Recent restarts by Toilless (epoch seconds), for the action gate's circuit breaker.
HISTORY = "toilless.io/restart-history"


class OrderProcessorHook(BaseHook):
    """Reads the processor's log and restarts it.

    :param kubernetes_conn_id: cncf-kubernetes Connection, used for pod logs and rollout restarts.
    :param namespace: the processor's namespace.
    :param deployment: the processor's Deployment.
    :param container: the container whose log to read ("" for the pod's only container).
    """

    conn_name_attr = "kubernetes_conn_id"
    default_conn_name = "kubernetes_default"
    hook_name = "Order processor"

    def __init__(
        self,
        *,
        kubernetes_conn_id: str = default_conn_name,
        namespace: str = "orders",
        deployment: str = "order-processor",
        container: str = "",
    ) -> None:
        super().__init__()
        self.kubernetes_conn_id = kubernetes_conn_id
        self.namespace = namespace
        self.deployment = deployment
        self.container = container

    @classmethod
    def from_settings(cls, kubernetes: dict[str, Any]) -> OrderProcessorHook:
        """The hook for the ``kubernetes`` section of the resolved settings (conn_id, namespace, deployment)."""
        return cls(
            kubernetes_conn_id=kubernetes["conn_id"],
            namespace=kubernetes["namespace"],
            deployment=kubernetes["deployment"],
            container=kubernetes.get("container") or "",
        )

    @cached_property
    def kube(self) -> KubernetesHook:
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

        return KubernetesHook(conn_id=self.kubernetes_conn_id)

    # -- log -------------------------------------------------------------------------------------------------
    def read_pod_log(self, *, max_bytes: int) -> tuple[list[str], str]:
        """Lines of the newest pod of the Deployment (its current container log), and which pod it was."""
        pod = self._newest_pod()
        name = pod.metadata.name
        kwargs: dict[str, Any] = {"name": name, "namespace": self.namespace, "limit_bytes": max_bytes}
        if self.container:
            kwargs["container"] = self.container
        # Raw bytes: the generated client would turn a non-JSON body into the repr of a bytes object.
        response = self.kube.core_v1_client.read_namespaced_pod_log(**kwargs, _preload_content=False)
        try:
            # read(n), not .data: bounded even if an API server (or a proxy) ignores limitBytes.
            text = response.read(max_bytes).decode("utf-8", errors="replace")
        finally:
            response.release_conn()
        return text.splitlines(), f"pod {self.namespace}/{name}"

    def _newest_pod(self) -> Any:
        deployment = self.kube.apps_v1_client.read_namespaced_deployment(self.deployment, self.namespace)
        labels = dict(deployment.spec.selector.match_labels or {})
        selector = ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
        pods = self.kube.core_v1_client.list_namespaced_pod(self.namespace, label_selector=selector).items
        # Selecting is the API server's job; checking again is cheap and guards against one ignoring it.
        pods = [
            pod
            for pod in pods
            if all((pod.metadata.labels or {}).get(key) == value for key, value in labels.items())
            and not pod.metadata.deletion_timestamp
        ]
        if not pods:
            raise RuntimeError(f"no pod of deployment {self.namespace}/{self.deployment} ({selector})")
        return max(
            pods,
            key=lambda pod: (pod.metadata.creation_timestamp is not None, pod.metadata.creation_timestamp),
        )

    # -- restart ---------------------------------------------------------------------------------------------
    def kubernetes_marker(self) -> dict[str, Any]:
        """The Deployment's last restart as recorded on its pod template: incident and time (may be empty)."""
        deployment = self.kube.apps_v1_client.read_namespaced_deployment(self.deployment, self.namespace)
        annotations = (deployment.spec.template.metadata.annotations or {}) if deployment.spec.template.metadata else {}
        marker: dict[str, Any] = {}
        if INCIDENT in annotations:
            marker["incident"] = annotations[INCIDENT]
        if RESTARTED_AT in annotations:
            marker["restarted_at"] = annotations[RESTARTED_AT]
        if HISTORY in annotations:
            marker["history"] = annotations[HISTORY]
        return marker

    def rollout_restart(self, *, incident_key: str, now: datetime, history: str = "") -> dict[str, Any]:
        """``kubectl rollout restart``: one patch setting restartedAt, the incident it was for and the recent restarts
        (the circuit breaker's history), so marker and restart are one atomic write."""
        annotations = {RESTARTED_AT: now.isoformat(), INCIDENT: incident_key}
        if history:
            annotations[HISTORY] = history
        patch = {"spec": {"template": {"metadata": {"annotations": annotations}}}}
        self.kube.apps_v1_client.patch_namespaced_deployment(self.deployment, self.namespace, patch)
        log.info("Restarted deployment %s/%s for %s", self.namespace, self.deployment, incident_key)
        return {
            "method": "kubernetes",
            "target": f"{self.namespace}/{self.deployment}",
            "restarted_at": now.isoformat(),
        }

    @staticmethod
    def run_restart_command(command: list[str], *, timeout: float) -> dict[str, Any]:
        """Run the configured restart command (an argv list, no shell); a non-zero exit is an error."""
        if not command or not all(isinstance(part, str) and part for part in command):
            raise ValueError("restart.command must be a non-empty list of strings (argv, no shell)")
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        output = (result.stdout + result.stderr).strip()[-2000:]
        if result.returncode != 0:
            raise RuntimeError(f"restart command {command[0]} exited {result.returncode}: {output}")
        return {"method": "command", "target": command[0], "output": output}


def variable_marker(variable: str) -> dict[str, Any]:
    """The restart marker kept in an Airflow Variable (for the command method)."""
    from toilless.common.state import decode_state, read_raw_state

    raw = read_raw_state(variable)
    value = decode_state(raw, key=variable)
    if value is None:
        # Unreadable: treat as "restarted for an unknown incident", which never matches a real incident key.
        return {"incident": "unreadable", "raw": raw}
    return value


def set_variable_marker(variable: str, marker: dict[str, Any]) -> None:
    from toilless.common.state import write_state

    write_state(variable, marker)


def read_processor_run(settings: dict[str, Any]) -> RunSummary:
    """The latest run of the processor from wherever its log lives, per the resolved settings of a run."""
    log_settings = settings["log"]
    excerpt_lines = int(log_settings.get("excerpt_lines", 15))
    timezone = str(log_settings.get("timezone", "UTC"))
    if log_settings["source"] == "kubernetes":
        hook = OrderProcessorHook.from_settings(settings["kubernetes"])
        lines, source = hook.read_pod_log(max_bytes=int(log_settings["max_bytes"]))
        run_lines, found = latest_run_lines([lines])
        sources = [source]
        notes: list[str] = []
    else:
        read = read_latest_run(
            Path(log_settings["path"]),
            allowed_roots=[str(root) for root in log_settings.get("allowed_roots") or []],
            max_files=int(log_settings["max_files"]),
            max_bytes=int(log_settings["max_bytes"]),
            max_decompressed_bytes=int(log_settings.get("max_decompressed_bytes") or DEFAULT_MAX_DECOMPRESSED_BYTES),
        )
        run_lines, found, sources, notes = read
        for note in notes:
            log.warning("Processor log: %s", note)
    summary = summarize_run(run_lines, found_startup=found, timezone=timezone, excerpt_lines=excerpt_lines)
    summary.sources = sources
    for note in notes:
        summary.add_note(note)
    return summary


def restart_if_allowed(
    settings: dict[str, Any], diagnosis: dict[str, Any], *, run_started_at: datetime | None = None
) -> dict[str, Any]:
    """Restart the processor when the verdict, the action gate and the incident's history allow it.

    The marker is re-read right before acting, so a retry of this step (or the next hourly run) does not
    restart again for an incident it already restarted for. A marker for this incident written after
    ``run_started_at`` is this run's own restart (an earlier try whose answer was lost): reported as done, so
    the recovery is still verified. The action gate (``toilless.common.gate``: dry run, business hours,
    maintenance window, cool-down, circuit breaker) is checked with that fresh marker at the moment of restarting;
    its verdict is in the result under ``gate``.
    """
    from toilless import order_restart
    from toilless.common import gate
    from toilless.order_processor import Verdict, decide_restart

    verdict_data = {key: value for key, value in diagnosis["verdict"].items() if key != "restartable"}
    verdict = Verdict(**verdict_data)
    restart = settings["restart"]
    method = restart["method"]
    gate_policy = order_restart.restart_gate_policy(settings)
    now = datetime.now(UTC)
    result: dict[str, Any] = {
        "restarted": False,
        "dry_run": settings["dry_run"],
        "method": method,
        "incident": verdict.incident_key,
        "checked_at": now.isoformat(),
    }
    hook = OrderProcessorHook.from_settings(settings["kubernetes"])
    # The restart marker is only read when there is something to restart: a healthy verdict touches nothing.
    marker: dict[str, Any] | None = None
    if verdict.restartable:
        marker = {}
        if method == "kubernetes":
            marker = hook.kubernetes_marker()
        elif method == "command":
            marker = variable_marker(restart["marker_variable"])
        now = datetime.now(UTC)  # the moment of acting: right after the fresh marker
    target = f"{settings['kubernetes']['namespace']}/{settings['kubernetes']['deployment']}"
    checked = gate.check_action(
        "restart the order processor",
        target if method == "kubernetes" else "order processor (restart command)",
        now=now,
        policy=gate_policy,
        history=order_restart.restart_history(
            marker,
            incident_key=verdict.incident_key,
            now=now,
            memory_hours=float(restart["incident_memory_hours"]),
        ),
    )
    result["gate"] = checked.as_dict()
    result["policy"] = checked.as_dict()
    result["checked_at"] = now.isoformat()
    # Dry run is decided below (it reports what would be done); "already restarted for this incident" is reported by
    # decide_restart (with the earlier try of this run told apart); every other gate check decides here.
    gate_allows = checked.allowed or checked.check in (gate.DRY_RUN, gate.ONCE_PER_INCIDENT)
    decision = decide_restart(
        verdict,
        method=method,
        allow_restart=settings["allow_restart"],
        off_reason=settings.get("restart_off_reason"),
        marker=marker,
        policy_allowed=gate_allows,
        policy_reason=checked.reason,
        policy_allowed_from=checked.allowed_from,
        now=now,
        memory_hours=float(restart["incident_memory_hours"]),
    )
    if not verdict.restartable:
        return {**result, **decision.as_dict()}
    result.update(decision.as_dict())
    result["previous_marker"] = marker
    if decision.already_done and run_started_at is not None and _marker_time(marker) >= run_started_at:
        log.info("This run already restarted the processor at %s (an earlier try)", marker.get("restarted_at"))
        result.update(
            restarted=True,
            already_done=False,
            restarted_at=marker["restarted_at"],
            reason=f"restarted by an earlier try of this run at {marker['restarted_at']}; not again",
        )
        return result
    if not decision.act:
        log.info("Not restarting: %s", decision.reason)
        return result
    if not checked.allowed:  # dry run
        result["reason"] = f"dry run: would restart ({decision.reason})"
        log.info("%s", result["reason"])
        return result
    assert verdict.incident_key is not None  # restartable verdicts carry one
    history = order_restart.history_after_restart(marker, now, gate_policy.breaker_window)
    if method == "kubernetes":
        done = hook.rollout_restart(incident_key=verdict.incident_key, now=now, history=history)
    else:
        variable = restart["marker_variable"]
        record = {"incident": verdict.incident_key, "restarted_at": now.isoformat(), "history": history}
        # Marker first: if this worker dies mid-command, a retry must not run the command again.
        set_variable_marker(variable, {**record, "state": "started"})
        try:
            done = hook.run_restart_command(list(restart["command"]), timeout=float(restart["command_timeout_seconds"]))
        except Exception:
            set_variable_marker(variable, {**record, "state": "failed"})
            raise
        set_variable_marker(variable, {**record, "state": "done"})
    result.update(done)
    result["restarted"] = True
    result["restarted_at"] = now.isoformat()
    return result


def _marker_time(marker: dict[str, Any]) -> datetime:
    try:
        moment = datetime.fromisoformat(str(marker.get("restarted_at")))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
