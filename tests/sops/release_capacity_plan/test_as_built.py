"""The as-built document and its Slack summary: the seed's template, outside text kept inert; filed on GitHub once."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sandbox.fake_github import FakeGitHub
from sandbox.kubernetes import KubernetesEmulatorServer
from sandbox.release_capacity_plan_data import SEED_PARAMS, create_deployment, deployment_body
from sandbox.slack_sink import SlackSink
from tests.fixtures.slack_checks import markup_problems
from toilless.common.reporting import render_report
from toilless.sops.release_capacity_plan import steps
from toilless.sops.release_capacity_plan.as_built import as_built_markdown, summary_lines

PLAN = {
    "changes": [
        {"target": "shop/app", "field": "replicas", "before": "3", "after": "6", "reason": "ceil(2600 / 500) = 6"}
    ],
    "notes": [],
}
RENDERED = {"schema_version": "1.33", "patch_yaml": "spec:\n  replicas: 6\n", "manifests_yaml": "", "hpa_yaml": ""}


def test_template_sections_in_order() -> None:
    text = as_built_markdown(
        release="2026.12.1", inputs={"stakeholders": ["PO"]}, plan=PLAN, rendered=RENDERED, generated_by="test"
    )
    sections = [
        "## Stakeholders",
        "## Code changes",
        "## Data changes",
        "## System changes",
        "### Capacity",
        "## Design decisions",
        "## Tests",
        "## Deployment notes",
        "## Deployment files",
    ]
    positions = [text.index(section) for section in sections]
    assert positions == sorted(positions)
    assert "| shop/app | replicas | 3 | 6 | ceil(2600 / 500) = 6 |" in text
    assert "Kubernetes 1.33 schema" in text


def test_outside_text_cannot_break_the_table_or_the_fence() -> None:
    hostile = {
        "code_changes": [{"kind": "feature", "ticket": "X|Y", "summary": "line\nbreak | pipe"}],
        "design_notes": ["```\nnot code"],
    }
    rendered = {**RENDERED, "patch_yaml": "a: '````'\n"}
    text = as_built_markdown(release="r1", inputs=hostile, plan=PLAN, rendered=rendered, generated_by="test")
    assert "| X\\|Y | line break \\| pipe |" in text
    assert "`````yaml" in text  # a fence longer than the longest backtick run inside


def test_slack_summary_is_escaped() -> None:
    plan = {"changes": [{**PLAN["changes"][0], "target": "<!channel> shop/app"}], "notes": []}
    lines = summary_lines(release="r1", plan=plan, rendered=RENDERED, saved_to="/x", issue_url=None)
    message = render_report(title="t", lines=lines)
    assert markup_problems(message, []) == []
    assert "3 -&gt; 6" in message["text"]


@pytest.fixture
def filed_release(
    kubernetes_emulator: KubernetesEmulatorServer,
    fake_github: FakeGitHub,
    slack_sink: SlackSink,
    set_connection: Callable[[str, dict[str, Any]], None],
    set_variable: Callable[[str, Any], None],
    tmp_path: Path,
) -> tuple[FakeGitHub, dict, dict, dict]:
    namespace = f"shop-{uuid.uuid4().hex[:8]}"
    set_connection("github_release", fake_github.connection())
    github = {"enabled": True, "conn_id": "github_release", "repo": "shop/releases", "label": "as-built"}
    set_variable(
        "toilless_release_capacity_plan",
        {"allowed_namespaces": [namespace], "as_built_dir": str(tmp_path), "github": github},
    )
    create_deployment(kubernetes_emulator.url, deployment_body(namespace, "app"))
    settings = steps.resolve_settings({**SEED_PARAMS, "namespace": namespace})
    current = steps.read_current_resources(settings)
    capacity = steps.plan_capacity(settings, current)
    return fake_github, settings, capacity, steps.render_manifests(settings, current, capacity)


def test_as_built_is_filed_on_github_once_across_retries(filed_release) -> None:
    fake_github, settings, capacity, rendered = filed_release
    context = {"run_id": "manual__test"}
    first = steps.write_as_built(context, settings, capacity, rendered)
    second = steps.write_as_built(context, settings, capacity, rendered)  # a retry after the issue was filed
    [issue] = fake_github.issues("shop/releases")
    assert issue["title"] == "As-built: 2026.12.1"
    assert "## Deployment files" in issue["body"]
    assert first["issue_url"] == second["issue_url"] == issue["html_url"]
    assert Path(first["path"]).read_text(encoding="utf-8").startswith("# As-built: 2026.12.1")
