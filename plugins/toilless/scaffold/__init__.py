"""The SOP scaffold: ``python -m toilless.scaffold <dag_id>`` (or ``make sop NAME=<dag_id>``) writes a new SOP in the
layout of issue 13, named after its dag_id in every folder, that passes the house rules and its own tests as written.

What it writes (templates in ``templates/``, ``$name`` placeholders filled by :class:`string.Template`):

- ``dags/<dag_id>.py``: the procedure as docstring (When it runs / Steps / Who is told / Safety), Params, wiring;
- ``plugins/toilless/sops/<dag_id>/``: ``__init__.py``, the pure ``decide.py`` and ``steps.py`` (config, Params,
  the action gate, the report);
- ``include/config/<dag_id>.yaml``, ``sandbox/services/<dag_id>.py``, ``benchmarks/bench_<dag_id>.py``;
- ``tests/sops/<dag_id>/``: a unit test of the decision and an integration test that runs the DAG end to end.

It refuses a dag_id that is not a snake_case Python identifier, and any name that already has one of those files:
it never overwrites. What it cannot decide for you is printed at the end (:func:`manual_steps`).
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

TEMPLATES = Path(__file__).resolve().parent / "templates"
#: Lower-case snake_case that is a Python identifier (the package name, the DAG function's name) and a file stem.
DAG_ID = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*\Z")
MAX_DAG_ID_LENGTH = 60
#: Names already taken by shared files (include/config/toilless.yaml) or packages.
RESERVED = frozenset({"toilless", "common", "sops", "scaffold", "test", "tests"})

#: Template -> where it is written, relative to the repository root.
FILES: dict[str, str] = {
    "dag.py.tmpl": "dags/{dag_id}.py",
    "package_init.py.tmpl": "plugins/toilless/sops/{dag_id}/__init__.py",
    "decide.py.tmpl": "plugins/toilless/sops/{dag_id}/decide.py",
    "steps.py.tmpl": "plugins/toilless/sops/{dag_id}/steps.py",
    "config.yaml.tmpl": "include/config/{dag_id}.yaml",
    "service.py.tmpl": "sandbox/services/{dag_id}.py",
    "tests_init.py.tmpl": "tests/sops/{dag_id}/__init__.py",
    "test_decide.py.tmpl": "tests/sops/{dag_id}/test_decide.py",
    "test_dag.py.tmpl": "tests/sops/{dag_id}/test_dag.py",
    "bench.py.tmpl": "benchmarks/bench_{dag_id}.py",
}
#: Package markers shared by every SOP: created empty when missing, never changed when present.
SHARED_INITS = ("plugins/toilless/sops/__init__.py", "tests/sops/__init__.py")


class ScaffoldError(ValueError):
    """The dag_id cannot be scaffolded; the message says why."""


@dataclass(frozen=True)
class Sop:
    """What the templates are filled with."""

    dag_id: str
    owner: str = "sre"
    channel: str = "non_urgent"

    @property
    def title(self) -> str:
        return self.dag_id.replace("_", " ").capitalize()

    @property
    def class_name(self) -> str:
        return "".join(part.capitalize() for part in self.dag_id.split("_"))

    def fields(self) -> dict[str, str]:
        return {
            "dag_id": self.dag_id,
            "title": self.title,
            "class_name": self.class_name,
            "owner": self.owner,
            "channel": self.channel,
        }


def check_dag_id(dag_id: str, root: Path) -> None:
    """Raise :class:`ScaffoldError` unless ``dag_id`` is a new, valid SOP name in the repository at ``root``."""
    if not DAG_ID.match(dag_id) or len(dag_id) > MAX_DAG_ID_LENGTH:
        raise ScaffoldError(
            f"invalid dag_id {dag_id!r}: use lower-case snake_case (letters, digits, single underscores, starting with "
            f"a letter, at most {MAX_DAG_ID_LENGTH} characters), e.g. disk_space_guard"
        )
    if keyword.iskeyword(dag_id) or dag_id in RESERVED:
        raise ScaffoldError(f"invalid dag_id {dag_id!r}: the name is reserved")
    taken = [target.format(dag_id=dag_id) for target in FILES.values()]
    taken += [f"plugins/toilless/sops/{dag_id}", f"tests/sops/{dag_id}"]
    existing = sorted({path for path in taken if (root / path).exists()})
    if existing:
        raise ScaffoldError(f"dag_id {dag_id!r} already exists: {', '.join(existing)} (the scaffold never overwrites)")


def render(template: str, sop: Sop) -> str:
    return Template((TEMPLATES / template).read_text(encoding="utf-8")).substitute(sop.fields())


def scaffold(sop: Sop, root: Path) -> list[Path]:
    """Write the new SOP's files under ``root``; returns them. Nothing is written if the dag_id is refused."""
    check_dag_id(sop.dag_id, root)
    if not re.fullmatch(r"[a-z][a-z0-9_-]*", sop.owner) or sop.owner == "airflow":
        raise ScaffoldError(f"owner {sop.owner!r}: name the owning team (lower-case), not 'airflow'")
    if not re.fullmatch(r"[a-z][a-z0-9_]*", sop.channel):
        raise ScaffoldError(f"channel {sop.channel!r}: a channel name from include/config/toilless.yaml")
    # Render everything first: a template error leaves no half-written SOP behind.
    rendered = {root / target.format(dag_id=sop.dag_id): render(template, sop) for template, target in FILES.items()}
    written = []
    for marker in SHARED_INITS:
        path = root / marker
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("", encoding="utf-8")
            written.append(path)
    for path, text in rendered.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def manual_steps(sop: Sop) -> list[str]:
    """What is left for a person after :func:`scaffold`."""
    dag_id = sop.dag_id
    return [
        f"README.md: add {dag_id} to the SOP catalog (what it decides, when it runs, who is told).",
        f"include/alert_routes.yaml: add a route if an alert should start {dag_id} "
        "(tests/intake/test_routes_cover_dags.py fails until every DAG with an `alert` Param has one), "
        f"or remove the `alert` Param from dags/{dag_id}.py if only the schedule starts it.",
        f'Owner and channel: owner "{sop.owner}" in dags/{dag_id}.py (default_args), report channel "{sop.channel}" '
        f"in include/config/{dag_id}.yaml (a name from slack.channels in include/config/toilless.yaml).",
        f"Replace the stand-ins: measure_target() and the action in act_if_allowed() in "
        f"plugins/toilless/sops/{dag_id}/steps.py become hook calls (plugins/toilless/hooks/<system>.py), the "
        f"`stand_in` setting goes, and sandbox/services/{dag_id}.py starts what the SOP needs locally.",
        f"Write the procedure into the docstring of dags/{dag_id}.py, then run: "
        f".venv/bin/python -m pytest -q tests/dags tests/sops/{dag_id}",
    ]
