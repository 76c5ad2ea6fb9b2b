"""Release capacity plan: the task bodies of dags/release_capacity_plan.py, the only module of the SOP that touches
Airflow (config and state are Variables, Kubernetes goes through hooks/kubernetes.py, the summary to Slack).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toilless.incidents import action_result
from toilless.sops.release_capacity_plan import as_built, manifests, plan, reading
from toilless.sops.release_capacity_plan import settings as run_settings

if TYPE_CHECKING:
    from toilless.hooks.kubernetes import KubernetesWorkloadHook

log = logging.getLogger(__name__)

DAG_ID = "release_capacity_plan"
CONFIG = run_settings.CONFIG
ACTION = "apply capacity plan"


def _hook(settings: Mapping[str, Any]) -> KubernetesWorkloadHook:
    from toilless.hooks.kubernetes import KubernetesWorkloadHook

    return KubernetesWorkloadHook(kubernetes_conn_id=settings["kubernetes_conn_id"])


def resolve_settings(params: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration (YAML + Variable) with the run's Params applied; bad or loosening input fails the run."""
    from toilless.common.config import load_config

    return run_settings.resolve(load_config(CONFIG), params)


def read_current_resources(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Each named Deployment as the cluster has it now: the manifest (without server fields) and its resources."""
    hook = _hook(settings)
    found = []
    measured = settings.get("metrics_source") == "metrics_api"
    for name in settings["deployments"]:
        manifest = hook.read_deployment(settings["namespace"], name)
        usage: dict[str, dict[str, int]] = {}
        if measured:
            labels = ((manifest.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
            usage = reading.peak_usage(hook.pod_metrics(settings["namespace"], dict(labels))) if labels else {}
        # Parsed here so a Deployment whose resources Kubernetes' contracts refuse fails before any planning.
        reading.deployment_from_manifest(manifest, usage)
        found.append(
            {
                "manifest": manifest_for_plan(manifest),
                "resource_version": (manifest.get("metadata") or {}).get("resourceVersion"),
                "usage": usage,
            }
        )
    log.info("Read %s Deployment(s) in %s", len(found), settings["namespace"])
    source = "metrics API (peak per container), else figures" if measured else "figures"
    return {"read_at": datetime.now(UTC).isoformat(), "deployments": found, "utilisation_source": source}


def manifest_for_plan(manifest: Mapping[str, Any]) -> dict[str, Any]:
    return manifests.clean_manifest(manifest)


def plan_capacity(settings: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """The plan (pure: toilless.sops.release_capacity_plan.plan)."""
    deployments = [
        reading.deployment_from_manifest(item["manifest"], item.get("usage")) for item in current["deployments"]
    ]
    figures = plan.Figures(**settings["figures"])
    components = [plan.NewComponent(**component) for component in settings["new_components"]]
    result = plan.plan_capacity(deployments, figures, components).as_dict()
    for change in result["changes"]:
        log.info("%s %s: %s -> %s (%s)", *(change[k] for k in ("target", "field", "before", "after", "reason")))
    return result


def render_manifests(settings: Mapping[str, Any], current: Mapping[str, Any], capacity: Mapping[str, Any]) -> dict:
    """The patch per Deployment, the manifests after it, new components and the HPA suggestion; all validated."""
    version = settings["kubernetes_version"]
    by_name = {item["manifest"]["metadata"]["name"]: item["manifest"] for item in current["deployments"]}
    patches, full, hpas = [], [], []
    for deployment in capacity["deployments"]:
        patch = manifests.deployment_patch(deployment)
        after = manifests.apply_patch(by_name[deployment["name"]], patch)
        manifests.validate_manifest(after, version)
        patches.append({"namespace": deployment["namespace"], "name": deployment["name"], "patch": patch})
        full.append(after)
        if settings["hpa"]["suggest"]:
            hpa = manifests.hpa_manifest(
                deployment,
                max_factor=settings["hpa"]["max_factor"],
                target_cpu_utilisation_pct=settings["hpa"]["target_cpu_utilisation_pct"],
                max_replicas=settings["figures"]["max_replicas"],
            )
            if hpa is not None:
                manifests.validate_manifest(hpa, version)
                hpas.append(hpa)
    for component in capacity["new_components"]:
        manifest = manifests.component_manifest(component)
        manifests.validate_manifest(manifest, version)
        full.append(manifest)
    plan_id = plan_fingerprint(settings["release"], patches)
    return {
        "plan_id": plan_id,
        "schema_version": version,
        "patches": patches,
        "patch_yaml": manifests.render_yaml(
            [{"target": f"{p['namespace']}/{p['name']}", "patch": p["patch"]} for p in patches]
        ),
        "manifests_yaml": manifests.render_yaml(full),
        "hpa_yaml": manifests.render_yaml(hpas) if hpas else "",
        "validated": len(full) + len(hpas),
    }


def plan_fingerprint(release: str, patches: list[dict[str, Any]]) -> str:
    """``<release>.<12 hex>``: names the plan on the Deployments it was applied to (the once-only marker)."""
    digest = hashlib.sha256(json.dumps(patches, sort_keys=True).encode()).hexdigest()[:12]
    return f"{release}.{digest}"


def write_as_built(
    context: Mapping[str, Any], settings: Mapping[str, Any], capacity: Mapping[str, Any], rendered: Mapping[str, Any]
) -> dict[str, Any]:
    """Save the as-built Markdown, file it on GitHub when configured (once per plan), post the Slack summary."""
    from toilless.common.reporting import send_report

    release = settings["release"]
    text = as_built.as_built_markdown(
        release=release,
        inputs=settings["inputs"],
        plan=capacity,
        rendered=rendered,
        generated_by=f"{DAG_ID} run {context.get('run_id', '')}",
    )
    folder = as_built_folder(settings["as_built_dir"]) / release
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "as-built.md"
    temporary = path.with_suffix(".md.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)  # a reader never sees half a document
    issue_url = _file_issue(settings, rendered["plan_id"], text) if settings["github"]["enabled"] else None
    lines = as_built.summary_lines(
        release=release, plan=capacity, rendered=rendered, saved_to=str(path), issue_url=issue_url
    )
    lines += settings["notes"]
    title = f"Release capacity plan: {release}"
    if settings["dry_run"]:
        title += " [dry run]"
    send_report(context, channel=settings["report_channel"], title=title, lines=lines, status="ok")
    return {"path": str(path), "issue_url": issue_url, "chars": len(text)}


def as_built_folder(configured: str) -> Path:
    """``as_built_dir``, relative to AIRFLOW_HOME unless absolute (the release name below it is checked)."""
    base = Path(configured)
    if not base.is_absolute():
        base = Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser() / base
    return base


def _file_issue(settings: Mapping[str, Any], plan_id: str, text: str) -> str:
    """The as-built as a GitHub issue, found again by its marker if a previous try already filed it."""
    from toilless.hooks.github_issues import GithubIssueHook

    github = settings["github"]
    marker = f"<!-- toilless:{DAG_ID}:{plan_id} -->"
    hook = GithubIssueHook(github_conn_id=github["conn_id"])
    existing = hook.existing_fingerprints(github["repo"], github["label"], [marker])
    if marker in existing:
        return existing[marker]
    body = f"{text}\n{marker}\n"
    if len(body) > 65_000:  # GitHub's body limit is 65,536: the document stays on disk, the issue says where
        body = (
            f"{text[:60_000]}\n\n… cut to fit a GitHub issue; the whole document is in the run's as-built.\n{marker}\n"
        )
    issue = hook.create_issue(
        github["repo"], title=f"As-built: {settings['release']}", body=body, labels=[github["label"]]
    )
    return issue["url"]


def choose_path(settings: Mapping[str, Any], capacity: Mapping[str, Any]) -> list[str]:
    """Approval then apply, the gate's dry-run refusal, or nothing (apply off, or nothing to change)."""
    if not settings["apply"]["enabled"]:
        log.info("Applying is switched off (apply.enabled / Param apply): the plan and manifests are the product")
        return []
    if not any(deployment["changed"] for deployment in capacity["deployments"]):
        log.info("Nothing to apply")
        return []
    if settings["dry_run"]:
        return ["apply_capacity"]  # the gate says what would be done, and changes nothing
    return ["request_approval"]


def approval_text(settings: Mapping[str, Any], capacity: Mapping[str, Any], rendered: Mapping[str, Any]) -> dict:
    """Subject and body of the approval request (plain text: the notifier escapes it for Slack)."""
    rows = [c for c in capacity["changes"] if c["before"] != c["after"] and not c["target"].endswith("(new)")]
    body = [f"Apply the capacity plan {rendered['plan_id']} to namespace {settings['namespace']}:"]
    body += [f"- {c['target']} {c['field']}: {c['before']} -> **{c['after']}**" for c in rows[:30]]
    if len(rows) > 30:
        body.append(f"- ... and {len(rows) - 30} more")
    body.append(f"No answer within {settings['approval_timeout_minutes']:g} minutes counts as Reject.")
    return {
        "subject": f"Apply release capacity plan {settings['release']}",
        "body": "\n".join(body),
        "timeout_minutes": settings["approval_timeout_minutes"],
    }


# -- acting --------------------------------------------------------------------------------------------------------


def apply_capacity(
    context: Mapping[str, Any],
    settings: Mapping[str, Any],
    current: Mapping[str, Any],
    capacity: Mapping[str, Any],
    rendered: Mapping[str, Any],
) -> dict[str, Any]:
    """Patch each changed Deployment once, after approval, when the gate allows it at that moment.

    Each Deployment is re-read right before acting: its plan marker says whether this plan was already applied
    (marker and change are one patch, so a retry after a lost answer finds it and does nothing); replicas are never
    set below what runs now; a Deployment whose resources changed since the plan was read is refused.
    """
    from toilless.common import gate
    from toilless.common.config import load_config
    from toilless.common.errors import InvalidInput

    approval = context["ti"].xcom_pull(task_ids="request_approval") or {}
    approved = approval.get("chosen_options") == ["Approve"]
    dry_run = bool(settings["dry_run"]) or bool((context.get("params") or {}).get("dry_run"))
    if not (approved or dry_run):
        # Only reachable by a wiring change: a Reject or timeout skips this task.
        raise InvalidInput("the capacity plan was not approved: nothing applied")
    policy = gate.sop_gate_policy(load_config("toilless"), settings, dry_run=dry_run)
    hook = _hook(settings)
    read = {item["manifest"]["metadata"]["name"]: item["manifest"] for item in current["deployments"]}
    plan_id = rendered["plan_id"]
    results = []
    for deployment in capacity["deployments"]:
        if not deployment["changed"]:
            continue
        namespace, name = deployment["namespace"], deployment["name"]
        target = f"{namespace}/{name}"
        now_manifest = hook.read_deployment(namespace, name)
        annotations = (now_manifest.get("metadata") or {}).get("annotations") or {}
        now = datetime.now(UTC)
        history = gate.TargetHistory(
            recent_actions=gate.decode_history(annotations.get(HISTORY_ANNOTATION), now=now),
            incident_done=annotations.get(manifests.PLAN_ANNOTATION) == plan_id,
            incident_note=f"plan {plan_id} is recorded on the Deployment",
        )
        verdict = gate.check_action(ACTION, target, now=now, policy=policy, history=history)
        if not verdict.allowed:
            log.info("Not applying to %s: %s", target, verdict.reason)
            results.append({"target": target, "applied": False, "reason": verdict.reason, "gate": verdict.as_dict()})
            continue
        if _resources(now_manifest) != _resources(read[name]):
            raise InvalidInput(
                f"{target} changed since the plan was made (its containers' resources differ): nothing applied; "
                "run the plan again"
            )
        replicas_now = int((now_manifest.get("spec") or {}).get("replicas", 1))
        desired = dict(deployment, replicas=max(int(deployment["replicas"]), replicas_now))
        patch = apply_patch_body(now_manifest, desired, plan_id)
        patch["metadata"]["annotations"][HISTORY_ANNOTATION] = gate.encode_history(
            [*history.recent_actions, now], now=now, keep=policy.breaker_window
        )
        with action_result(ACTION, target):
            hook.patch_deployment(namespace, name, patch)
        results.append(
            {
                "target": target,
                "applied": True,
                "replicas": desired["replicas"],
                "reason": verdict.reason,
                "gate": verdict.as_dict(),
            }
        )
    return {"plan_id": plan_id, "dry_run": dry_run, "results": results}


#: Toilless's recent applies on the Deployment (epoch seconds), for the circuit breaker.
HISTORY_ANNOTATION = "toilless.io/capacity-history"


def _resources(manifest: Mapping[str, Any]) -> dict[str, Any]:
    containers = ((manifest.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []
    return {c.get("name"): c.get("resources") or {} for c in containers}


def apply_patch_body(now_manifest: Mapping[str, Any], desired: Mapping[str, Any], plan_id: str) -> dict[str, Any]:
    """The patch sent: the strategic-merge patch, with each changed container's whole entry as re-read.

    A strategic merge merges containers by name; a plain JSON merge (what the test emulator does) replaces the
    list. Sending every container entry whole, with only its resources changed, gives the same Deployment under
    both. ``resourceVersion`` makes the API server refuse (409, retried) if the Deployment changed since the re-read.
    """
    patch = manifests.deployment_patch(desired, plan_id=plan_id)
    planned = {c["name"]: c for c in (patch["spec"].get("template") or {}).get("spec", {}).get("containers", [])}
    containers = ((now_manifest.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []
    if planned:
        patch["spec"]["template"]["spec"]["containers"] = [
            manifests.apply_patch(container, planned.get(container.get("name"), {})) for container in containers
        ]
    version = (now_manifest.get("metadata") or {}).get("resourceVersion")
    if version:
        patch["metadata"]["resourceVersion"] = version
    return patch


def verify_rollout(settings: Mapping[str, Any], applied: Mapping[str, Any]) -> dict[str, Any]:
    """Wait until every patched Deployment is rolled out (observed, updated and available at its replicas)."""
    hook = _hook(settings)
    targets = [r["target"] for r in applied["results"] if r["applied"]]
    if not targets:
        return {"status": "nothing_applied", "verified": [], "pending": {}}
    deadline = time.monotonic() + float(settings["apply"]["verify_timeout_seconds"])
    pending = dict.fromkeys(targets, "not checked")
    while pending:
        for target in list(pending):
            namespace, name = target.split("/", 1)
            done, why = rollout_done(hook.read_deployment(namespace, name))
            if done:
                del pending[target]
            else:
                pending[target] = why
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(float(settings["apply"]["verify_poll_seconds"]))
    status = "rolled_out" if not pending else "timed_out"
    return {"status": status, "verified": [t for t in targets if t not in pending], "pending": pending}


def rollout_done(manifest: Mapping[str, Any]) -> tuple[bool, str]:
    """``kubectl rollout status``'s test: the controller saw the change, every replica is updated and available."""
    spec, status = manifest.get("spec") or {}, manifest.get("status") or {}
    generation = (manifest.get("metadata") or {}).get("generation")
    replicas = int(spec.get("replicas", 1))
    observed = status.get("observedGeneration")
    if generation is not None and observed is not None and observed < generation:
        return False, f"waiting for the controller to observe generation {generation}"
    updated, available = int(status.get("updatedReplicas") or 0), int(status.get("availableReplicas") or 0)
    if updated < replicas:
        return False, f"{updated} of {replicas} replicas updated"
    if available < replicas:
        return False, f"{available} of {replicas} replicas available"
    return True, "rolled out"


def report_outcome(
    context: Mapping[str, Any], settings: Mapping[str, Any], applied: Mapping[str, Any] | None, verified: Any
) -> dict[str, Any]:
    """Tell what was applied and whether it rolled out (only when apply ran)."""
    from toilless.common.reporting import send_report

    if not applied:
        return {"posted": False}
    lines: list[str] = []
    for result in applied["results"]:
        verb = "applied" if result["applied"] else "not applied"
        lines.append(f"{result['target']}: {verb}: {result['reason']}")
    status = "ok"
    if verified:
        lines.append(f"rollout: {verified['status']}")
        lines += [f"{target}: {why}" for target, why in verified["pending"].items()]
        if verified["status"] == "timed_out":
            status = "critical"
    title = f"Release capacity plan applied: {settings['release']}"
    if applied["dry_run"]:
        title = f"Release capacity plan {settings['release']} [dry run: nothing changed]"
    channel = settings["report_channel"] if status == "ok" else "urgent"
    send_report(context, channel=channel, title=title, lines=lines, status=status)
    return {"posted": True, "channel": channel, "status": status}
