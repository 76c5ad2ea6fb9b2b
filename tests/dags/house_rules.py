"""The house rules every SOP DAG obeys, and the layout rules of the tree (issue 13: one home per SOP, named after
its dag_id), as functions that return the violations they find (empty: compliant).

Kept apart from the tests so a test can feed them a bad DAG or a small fixture tree and prove each rule catches what
it should. The layout rules take the repository root, so they run on this tree and on any copy of it.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fixtures.pyparse import parse
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
    tree = parse(path)
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


# -- the layout rules (issue 13): one home per SOP, named after its dag_id ----------------------------------------


@dataclass(frozen=True)
class Awaiting:
    """A part of today's tree that an issue-13 move in flight on another branch brings into line."""

    #: Who brings it into line.
    by: str
    #: Its paths under plugins/toilless/ that the move removes or splits (a folder ends with "/").
    paths: tuple[str, ...] = ()


#: THE list the lead empties at merge. The real-tree tests (test_house_rules.py) let a layout or Param-form violation
#: through only when it is about an entry here (the dag_id itself, its package, or one of its paths), and they fail
#: as soon as an entry has no violation left: remove that entry then. After the merge of every move it must be empty.
AWAITING_MERGE: dict[str, Awaiting] = {}


def awaited_by(subject: str) -> str | None:
    """The AWAITING_MERGE entry a finding's subject (dag_id or repository-relative path) belongs to, if any."""
    for name, entry in AWAITING_MERGE.items():
        if subject == name or subject.startswith(f"plugins/toilless/sops/{name}"):
            return name
        for path in entry.paths:
            full = f"plugins/toilless/{path}"
            if subject == full or (full.endswith("/") and subject.startswith(full)):
                return name
    return None


#: Over this many lines a module holds two concerns (STYLE.md section 0) unless its docstring says why not.
MAX_MODULE_LINES = 400
#: The written reason a longer module needs, in the first lines of its module docstring:
#: ``Over 400 lines because <reason>.`` (the reason itself must be there, not just the words).
LONG_MODULE_REASON = re.compile(r"Over 400 lines because \S+(?: \S+){2,}")
#: How many first lines of the docstring are searched for that reason.
LONG_MODULE_REASON_LINES = 5
#: Flat modules allowed directly in plugins/toilless/: the package's own __init__ and nothing per SOP. Shared code
#: lives in common/, system wrappers in hooks/ operators/ sensors/ triggers/ notifiers/, a SOP in sops/<dag_id>/.
FLAT_MODULES_ALLOWED = frozenset({"__init__.py"})
#: DAGs that are not SOPs: their code lives where the layout says, not in sops/<dag_id>/ (each with its reason).
NOT_SOPS: dict[str, str] = {
    "alert_intake_selftest": "the alert intake's own probe: code in plugins/toilless/intake/, tests in tests/intake/",
}
#: Config names every SOP may read besides its own dag_id.
SHARED_CONFIGS = frozenset({"toilless"})


@dataclass(frozen=True)
class Finding:
    """One layout violation: ``subject`` is a dag_id or a path relative to the repository root."""

    subject: str
    problem: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.problem}"


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def sops_dir(root: Path) -> Path:
    return root / "plugins" / "toilless" / "sops"


def sop_packages(root: Path) -> list[Path]:
    """Every folder under plugins/toilless/sops/ (each one SOP's package), by name."""
    folder = sops_dir(root)
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.iterdir() if path.is_dir() and path.name != "__pycache__")


def dag_ids(root: Path) -> list[str]:
    """The dag_ids of dags/ by file stem (the source rule makes stem and dag_id one name)."""
    return sorted(path.stem for path in (root / "dags").glob("*.py") if not path.name.startswith("_"))


def pure_modules(package: Path) -> list[Path]:
    """Every module of a SOP package except steps.py, subpackages included."""
    return sorted(path for path in package.rglob("*.py") if path.name != "steps.py" and "__pycache__" not in path.parts)


def module_name(path: Path, root: Path) -> str:
    """The import name of a module under plugins/ (``toilless.sops.x.decide``; a package's __init__ is the package)."""
    parts = list(path.relative_to(root / "plugins").with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def airflow_imports(path: Path) -> list[str]:
    """Every place ``path`` imports Airflow, at ANY level (inside functions too): ``line N: import airflow...``.

    Also catches ``importlib.import_module("airflow...")`` and ``__import__("airflow...")`` with a literal name.
    """
    tree = parse(path)
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if called in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                names = [node.args[0].value]
        found += [f"line {node.lineno}: imports {name}" for name in names if _is_airflow(name)]
    return found


def _is_airflow(name: str) -> bool:
    return name == "airflow" or name.startswith("airflow.")


#: Run in a fresh interpreter: Airflow cannot be imported (a meta-path finder refuses it), then each module is
#: imported. A fresh process, so nothing imported earlier in the test session (Airflow itself) is in sys.modules.
_BLOCKED_IMPORT_PROBE = """
import importlib, json, sys, traceback

class BlockAirflow:
    def find_spec(self, name, path=None, target=None):
        if name == "airflow" or name.startswith("airflow."):
            raise ModuleNotFoundError(f"Airflow is blocked here: a pure module imported {name!r}", name=name)
        return None

plugins, modules = sys.argv[1], json.loads(sys.argv[2])
sys.path.insert(0, plugins)
sys.meta_path.insert(0, BlockAirflow())
preloaded = sorted(name for name in sys.modules if name == "airflow" or name.startswith("airflow."))
result = {"preloaded": preloaded, "errors": {}}
for module in modules:
    try:
        importlib.import_module(module)
    except BaseException as err:
        result["errors"][module] = "".join(traceback.format_exception_only(type(err), err)).strip()[-500:]
print(json.dumps(result))
"""


def blocked_import_findings(root: Path, modules: list[Path]) -> list[Finding]:
    """Import ``modules`` (paths under root/plugins) in a fresh interpreter where Airflow cannot be imported."""
    if not modules:
        return []
    names = [module_name(path, root) for path in modules]
    result = subprocess.run(
        [sys.executable, "-c", _BLOCKED_IMPORT_PROBE, str(root / "plugins"), json.dumps(names)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=root,
    )
    if result.returncode != 0:
        raise RuntimeError(f"blocked-import probe crashed: {result.stderr[-2000:]}")
    report = json.loads(result.stdout.strip().splitlines()[-1])
    if report["preloaded"]:
        raise RuntimeError(f"Airflow was imported before the probe could block it: {report['preloaded']}")
    by_name = dict(zip(names, modules, strict=True))
    return [
        Finding(_rel(by_name[name], root), f"does not import with Airflow blocked: {error}")
        for name, error in report["errors"].items()
    ]


def pure_module_findings(root: Path) -> list[Finding]:
    """Rule (a): every module of every SOP package but steps.py has no Airflow import (AST, any level) and imports
    with Airflow blocked."""
    modules = [path for package in sop_packages(root) for path in pure_modules(package)]
    found = [
        Finding(_rel(path, root), f"pure module imports Airflow ({where}): move that code to steps.py")
        for path in modules
        for where in airflow_imports(path)
    ]
    return found + blocked_import_findings(root, modules)


def package_findings(root: Path) -> list[Finding]:
    """Rule (b): every SOP package has steps.py and __init__.py, and a DAG file of the same name."""
    found = []
    for package in sop_packages(root):
        where = _rel(package, root)
        if not (package / "steps.py").is_file():
            found.append(Finding(where, "no steps.py (the task bodies live there)"))
        if not (package / "__init__.py").is_file():
            found.append(Finding(where, "no __init__.py (its docstring says what the SOP decides)"))
        if not (root / "dags" / f"{package.name}.py").is_file():
            found.append(Finding(where, f"no dags/{package.name}.py: a SOP package is named after its dag_id"))
    return found


def long_module_findings(root: Path) -> list[Finding]:
    """Rule (c): no module under plugins/toilless/ over MAX_MODULE_LINES lines without a reason at its top."""
    found = []
    for path in sorted((root / "plugins" / "toilless").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        lines = len(text.splitlines())
        if lines <= MAX_MODULE_LINES:
            continue
        docstring = ast.get_docstring(parse(text)) or ""
        head = "\n".join(docstring.splitlines()[:LONG_MODULE_REASON_LINES])
        if not LONG_MODULE_REASON.search(" ".join(head.split())):
            found.append(
                Finding(
                    _rel(path, root),
                    f"{lines} lines, over {MAX_MODULE_LINES}: split it by concern, or write "
                    f"'Over {MAX_MODULE_LINES} lines because <reason>.' in the first "
                    f"{LONG_MODULE_REASON_LINES} lines of its docstring",
                )
            )
    return found


def flat_module_findings(root: Path) -> list[Finding]:
    """Rule (e): nothing flat in plugins/toilless/ but FLAT_MODULES_ALLOWED; everything else is in a package."""
    return [
        Finding(_rel(path, root), "flat module: a SOP's code goes to sops/<dag_id>/, shared code to common/")
        for path in sorted((root / "plugins" / "toilless").glob("*.py"))
        if path.name not in FLAT_MODULES_ALLOWED
    ]


_CONFIG_READERS = ("load_config", "read_defaults")


def config_names(paths: list[Path]) -> set[str]:
    """The literal names passed to load_config()/read_defaults() in ``paths``."""
    names = set()
    for path in paths:
        for node in ast.walk(parse(path)):
            if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)):
                continue
            called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if called in _CONFIG_READERS and isinstance(node.args[0].value, str):
                names.add(node.args[0].value)
    return names


def name_findings(root: Path, dag_id: str) -> list[Finding]:
    """Rule (f): the dag_id is the SOP's one name: sops/<dag_id>/, tests/sops/<dag_id>/, and the config it reads is
    include/config/<dag_id>.yaml (besides the shared toilless.yaml)."""
    if dag_id in NOT_SOPS:
        return []
    found = []
    package = sops_dir(root) / dag_id
    if not package.is_dir():
        found.append(Finding(dag_id, f"no package plugins/toilless/sops/{dag_id}/ (its logic and steps.py)"))
    if not (root / "tests" / "sops" / dag_id / "__init__.py").is_file():
        found.append(Finding(dag_id, f"no tests/sops/{dag_id}/ (with __init__.py) for its tests"))
    sources = [root / "dags" / f"{dag_id}.py", *(sorted(package.rglob("*.py")) if package.is_dir() else [])]
    for name in sorted(config_names(sources) - SHARED_CONFIGS):
        if name != dag_id:
            found.append(Finding(dag_id, f"reads config {name!r}: a SOP's config is named after its dag_id"))
    if dag_id in config_names(sources) and not (root / "include" / "config" / f"{dag_id}.yaml").is_file():
        found.append(Finding(dag_id, f"reads its config but include/config/{dag_id}.yaml does not exist"))
    return found


def form_marks_required(schema: Any) -> bool:
    """Whether Airflow 3.3's trigger form marks a Param required (red ``*``, and a null value refused).

    The UI's rule, as in ``airflow/ui/src/components/FlexibleForm/isParamRequired.tsx`` and in the 3.3.2 bundle
    (``!!schema.type && (!Array.isArray(schema.type) || !schema.type.includes("null"))``): required when the schema
    has a ``type`` and that type is not a list containing "null". A Param with ``const`` is rendered as a hidden
    input (Row.tsx), never as a field, so it is never marked.
    """
    if not isinstance(schema, dict):
        return False
    if _js_truthy(schema.get("const")):
        return False
    kind = schema.get("type")
    return _js_truthy(kind) and not (isinstance(kind, list) and "null" in kind)


def _js_truthy(value: Any) -> bool:
    # JavaScript's Boolean(): empty arrays and objects are true, None/False/0/"" are false.
    return isinstance(value, list | dict) or bool(value)


def param_form_violations(params: Any) -> list[str]:
    """Rule (d): a Param with a default is never required in the trigger form: leaving it alone is valid.

    ``params`` is a DAG's ``params`` (ParamsDict). A Param without a default (none, or None with a type that
    refuses null) may be required on purpose: the run cannot start without it.
    """
    found = []
    for name in params:
        param = params.get_param(name)
        if param.has_value and form_marks_required(param.schema):
            found.append(
                f"param {name}: has a default ({param.value!r}) but the form marks it required: schema type "
                f"{param.schema.get('type')!r} does not allow null (use e.g. type=['null', ...] and treat None as "
                "the default)"
            )
    return found
