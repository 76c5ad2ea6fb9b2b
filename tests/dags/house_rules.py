"""The house rules every SOP DAG obeys, as functions that return the violations they find (empty: compliant).

Kept apart from the tests so a test can feed them a bad DAG and prove each rule catches what it should.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from toilless.notifiers.slack_failure import SlackFailureNotifier

REPO = Path(__file__).resolve().parents[2]
PROBE = REPO / "scripts" / "parse_probe.py"
TASK_ID = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)+$")
#: Airflow's own limit for importing one DAG file ([core] dagbag_import_timeout).
PARSE_TIMEOUT_SECONDS = 30.0


def dag_violations(dag: Any) -> list[str]:
    """Rules checked on the parsed DAG object."""
    found: list[str] = []
    if not (dag.doc_md or "").strip():
        found.append("no doc_md (the module docstring is the SOP: doc_md=__doc__)")
    if not dag.tags:
        found.append("no tags")
    if dag.catchup:
        found.append("catchup is on")
    if "retries" not in (dag.default_args or {}):
        found.append("retries not set in default_args")
    for task in dag.tasks:
        if not task.owner or task.owner == "airflow":
            found.append(f"task {task.task_id}: owner is the default {task.owner!r}")
        callbacks = task.on_failure_callback or []
        callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
        if not any(isinstance(callback, SlackFailureNotifier) for callback in callbacks):
            found.append(f"task {task.task_id}: no shared Slack failure notifier")
        if not TASK_ID.match(task.task_id.split(".")[-1]):
            found.append(f"task {task.task_id}: id is not verb_noun")
    for name in dag.params:
        param = dag.params.get_param(name)
        if not param.schema.get("title") or not (param.description or param.schema.get("description")):
            found.append(f"param {name}: needs a title and a description (it is the UI form)")
    return found


def source_violations(path: Path, dag_ids: list[str]) -> list[str]:
    """Rules checked on the file: dag_id is the file stem, max_active_runs chosen on purpose."""
    found: list[str] = []
    if dag_ids != [path.stem]:
        found.append(f"defines {dag_ids}, expected exactly one DAG with dag_id {path.stem!r} (the file stem)")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    keywords = {kw.arg for node in ast.walk(tree) if isinstance(node, ast.Call) for kw in node.keywords}
    if "max_active_runs" not in keywords:
        found.append("max_active_runs not set (choose it on purpose)")
    if ast.get_docstring(tree) is None:
        found.append("no module docstring (the SOP in Markdown)")
    return found


def parse_in_fresh_process(path: Path) -> dict[str, Any]:
    """Run scripts/parse_probe.py on ``path`` in a new interpreter (sockets and DB blocked)."""
    result = subprocess.run(
        [sys.executable, str(PROBE), str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"parse probe crashed on {path}: {result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def parse_violations(report: dict[str, Any]) -> list[str]:
    """Rules on what parsing did: no error (network/DB blocked), no heavy imports, within Airflow's import limit."""
    found: list[str] = []
    if report["error"]:
        found.append(f"parsing failed with network and DB blocked: {report['error']}")
    if report["heavy_modules"]:
        found.append(f"heavy imports at parse time: {', '.join(report['heavy_modules'])}")
    if report["seconds"] > PARSE_TIMEOUT_SECONDS:
        found.append(f"parsing took {report['seconds']:.1f}s, over Airflow's {PARSE_TIMEOUT_SECONDS:.0f}s import limit")
    return found
