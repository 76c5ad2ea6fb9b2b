"""Routes as data: which alert starts which DAG, for which target, with which conf. Pure, no Airflow import.

A routes file (include/alert_routes.yaml) lists routes; the first route whose matchers all hold for an alert's labels
wins, as in Alertmanager's own routing tree. Matchers use Alertmanager's syntax (``name="v"``, ``!=``, ``=~``, ``!~``;
regexes are anchored; a missing label is the empty string).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from toilless.intake.models import Alert

ON_BUSY = ("skip", "queue")
DURING_MAINTENANCE = ("dry_run", "notify_only", "run")
CONF_TYPES = ("str", "int", "float", "bool", "list", "csv")
#: Keys the intake always sets itself; a route may not map them.
RESERVED_CONF_KEYS = ("alert", "dry_run", "triage")
#: The DAG a route with a ``triage`` rule starts instead of its runbook (docs/triage.md).
TRIAGE_DAG_ID = "triage_alert"
TRIAGE_RULES_FILE = "triage_rules.yaml"

_MATCHER = re.compile(
    r"""^\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*
        (?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<bare>[^\s"]*))\s*\Z""",
    re.VERBOSE,
)
_DAG_ID = re.compile(r"^[A-Za-z0-9_.-]{1,250}\Z")
_RUN_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_~:+-]+")


class RouteError(ValueError):
    """The routes file is wrong; the message says which route and what."""


class AlertConfError(ValueError):
    """An alert lacks what its route needs (a target label, a mapped label) or a value has the wrong type."""


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str
    pattern: re.Pattern[str] | None = field(default=None, compare=False)

    @classmethod
    def parse(cls, text: str) -> Matcher:
        found = _MATCHER.match(text)
        if not found:
            raise RouteError(f'matcher {text!r} is not like name="value" (ops: = != =~ !~)')
        value = found["quoted"] if found["quoted"] is not None else found["bare"] or ""
        value = re.sub(r"\\(.)", r"\1", value)
        pattern = None
        if found["op"] in ("=~", "!~"):
            try:
                pattern = re.compile(value)
            except re.error as err:
                raise RouteError(f"matcher {text!r}: bad regex: {err}") from err
        return cls(found["name"], found["op"], value, pattern)

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert self.pattern is not None
        hit = self.pattern.fullmatch(actual) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        return f'{self.name}{self.op}"{self.value}"'


@dataclass(frozen=True)
class ConfField:
    """One conf key a route fills from the alert: ``labels.x``, ``annotations.x``, ``alert.x`` or a literal."""

    key: str
    source: str | None
    as_type: str = "str"
    required: bool = True
    default: Any = None
    literal: Any = None

    @classmethod
    def parse(cls, key: str, spec: Any, route: str) -> ConfField:
        if key in RESERVED_CONF_KEYS:
            raise RouteError(f"route {route}: conf key {key!r} is set by the intake itself")
        if isinstance(spec, str):
            spec = {"from": spec}
        if not isinstance(spec, dict):
            raise RouteError(f"route {route}: conf.{key} must be 'labels.<name>' or a mapping with from/value")
        unknown = set(spec) - {"from", "as", "required", "default", "value"}
        if unknown:
            raise RouteError(f"route {route}: conf.{key} has unknown keys {sorted(unknown)}")
        if "value" in spec:
            return cls(key, None, literal=spec["value"])
        source = spec.get("from")
        if not isinstance(source, str) or source.split(".", 1)[0] not in ("labels", "annotations", "alert"):
            raise RouteError(f"route {route}: conf.{key}.from must start with labels., annotations. or alert.")
        as_type = spec.get("as", "str")
        if as_type not in CONF_TYPES:
            raise RouteError(f"route {route}: conf.{key}.as must be one of {', '.join(CONF_TYPES)}")
        required = bool(spec.get("required", "default" not in spec))
        return cls(key, source, as_type, required, spec.get("default"))

    def value_for(self, alert_conf: Mapping[str, Any]) -> tuple[bool, Any]:
        """(present, value) for one alert; raises AlertConfError when required and missing or mistyped."""
        if self.source is None:
            return True, self.literal
        section, _, name = self.source.partition(".")
        container = alert_conf.get(section) if section != "alert" else alert_conf
        raw = container.get(name) if isinstance(container, Mapping) else None
        if raw is None or raw == "":
            if self.required:
                raise AlertConfError(f"conf.{self.key} needs {self.source}, which the alert does not carry")
            return self.default is not None, self.default
        return True, _convert(raw, self.as_type, self.key)


@dataclass(frozen=True)
class Route:
    name: str
    dag_id: str
    matchers: tuple[Matcher, ...]
    target_labels: tuple[str, ...] = ()
    conf: tuple[ConfField, ...] = ()
    on_busy: str = "skip"
    during_maintenance: str = "dry_run"
    dry_run: bool = False
    description: str = ""
    #: A triage rule (include/triage_rules.yaml): the intake starts ``triage_alert`` (``dag_id``) for the alert,
    #: which starts ``runbook_dag_id`` only when the problem is real (docs/triage.md).
    triage: str = ""
    runbook_dag_id: str = ""

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(matcher.matches(labels) for matcher in self.matchers)

    @classmethod
    def parse(cls, spec: Any, index: int) -> Route:
        if not isinstance(spec, dict):
            raise RouteError(f"route #{index + 1} must be a mapping")
        name = str(spec.get("name") or f"#{index + 1}")
        known = {
            "name",
            "dag_id",
            "matchers",
            "match",
            "target",
            "conf",
            "on_busy",
            "during_maintenance",
            "dry_run",
            "description",
            "triage",
        }
        unknown = set(spec) - known
        if unknown:
            raise RouteError(f"route {name}: unknown keys {sorted(unknown)} (known: {', '.join(sorted(known))})")
        dag_id = spec.get("dag_id")
        if not isinstance(dag_id, str) or not _DAG_ID.match(dag_id):
            raise RouteError(f"route {name}: dag_id must be a DAG id, got {dag_id!r}")
        matchers = [Matcher.parse(text) for text in spec.get("matchers") or []]
        for label, value in (spec.get("match") or {}).items():
            matchers.append(Matcher(str(label), "=", str(value)))
        if not any(m.name == "alertname" and m.op in ("=", "=~") for m in matchers):
            raise RouteError(f'route {name}: needs an alertname matcher (alertname="..." or =~)')
        target = spec.get("target") or []
        if isinstance(target, str):
            target = [target]
        if not all(isinstance(label, str) and label for label in target):
            raise RouteError(f"route {name}: target must be a list of label names")
        conf_spec = spec.get("conf") or {}
        if not isinstance(conf_spec, dict):
            raise RouteError(f"route {name}: conf must be a mapping of conf key -> source")
        on_busy = spec.get("on_busy", "skip")
        if on_busy not in ON_BUSY:
            raise RouteError(f"route {name}: on_busy must be one of {', '.join(ON_BUSY)}")
        during = spec.get("during_maintenance", "dry_run")
        if during not in DURING_MAINTENANCE:
            raise RouteError(f"route {name}: during_maintenance must be one of {', '.join(DURING_MAINTENANCE)}")
        triage = spec.get("triage") or ""
        if not isinstance(triage, str):
            raise RouteError(f"route {name}: triage must name a rule of {TRIAGE_RULES_FILE}")
        return cls(
            name=name,
            dag_id=TRIAGE_DAG_ID if triage else dag_id,
            runbook_dag_id=dag_id if triage else "",
            triage=triage,
            matchers=tuple(matchers),
            target_labels=tuple(target),
            conf=tuple(ConfField.parse(str(key), value, name) for key, value in conf_spec.items()),
            on_busy=on_busy,
            during_maintenance=during,
            dry_run=bool(spec.get("dry_run", False)),
            description=str(spec.get("description", "")),
        )


@dataclass(frozen=True)
class RouteTable:
    routes: tuple[Route, ...]

    def match(self, labels: Mapping[str, str]) -> Route | None:
        """The first route whose matchers all hold, or None (the alert has no runbook)."""
        return next((route for route in self.routes if route.matches(labels)), None)

    @property
    def dag_ids(self) -> set[str]:
        return {route.dag_id for route in self.routes} | {route.runbook_dag_id for route in self.routes} - {""}

    @classmethod
    def from_data(cls, data: Any, *, triage_rules: Path | None = None) -> RouteTable:
        if not isinstance(data, dict) or not isinstance(data.get("routes"), list):
            raise RouteError("the routes file must be a mapping with a 'routes' list")
        routes = tuple(Route.parse(spec, index) for index, spec in enumerate(data["routes"]))
        names = [route.name for route in routes]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise RouteError(f"route names must be unique: {', '.join(duplicates)}")
        if any(route.triage for route in routes):
            _check_triage(routes, triage_rules)
        return cls(routes)

    @classmethod
    def from_file(cls, path: Path) -> RouteTable:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as err:
            raise RouteError(f"cannot read routes file {path}: {err}") from err
        except yaml.YAMLError as err:
            raise RouteError(f"routes file {path} is not valid YAML: {err}") from err
        return cls.from_data(data, triage_rules=path.parent / TRIAGE_RULES_FILE)


def _check_triage(routes: tuple[Route, ...], path: Path | None) -> None:
    """Every triage rule a route names exists and its PromQL parses (promtool, offline), or RouteError naming the route."""
    from toilless.sops.triage_alert import rules as triage_rules

    if path is None:
        from toilless.common.config import include_path

        path = include_path(TRIAGE_RULES_FILE)
    try:
        known = triage_rules.load_rules(path)
        # Every expression of a rule (its query, trend, counts' queries), failures grouped by rule.
        failures = triage_rules.failures_by_rule(triage_rules.check_promql(triage_rules.sample_expressions(known)))
    except triage_rules.TriageRuleError as err:
        named = ", ".join(route.name for route in routes if route.triage)
        raise RouteError(f"route(s) {named}: {err}") from err
    for route in routes:
        if route.triage and route.triage not in known:
            raise RouteError(f"route {route.name}: triage rule {route.triage!r} is not in {path.name}")
        if route.triage in failures:
            raise RouteError(
                f"route {route.name}: triage rule {route.triage}: PromQL does not parse: {failures[route.triage]}"
            )


def alert_conf(alert: Alert, external_url: str) -> dict[str, Any]:
    """The ``alert`` object every alert-triggered run gets (see toilless.common.params.ALERT_FIELDS)."""
    return {
        "alertname": alert.alertname,
        "status": alert.status,
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "startsAt": alert.starts_at_utc,
        "fingerprint": alert.fingerprint,
        "generatorURL": alert.generatorURL,
        "externalURL": external_url,
    }


def target_of(route: Route, alert: Alert) -> str:
    """The thing a run remediates, e.g. ``dbinstance_identifier=orders-db``; '' if the route has one target."""
    missing = [label for label in route.target_labels if not alert.labels.get(label)]
    if missing:
        raise AlertConfError(f"route {route.name} needs target label(s) {', '.join(missing)} on the alert")
    return ",".join(f"{label}={alert.labels[label]}" for label in route.target_labels)


def build_conf(route: Route, alert: Alert, external_url: str, *, dry_run: bool) -> dict[str, Any]:
    """The run conf: the alert, dry_run, and each key the route maps. Raises AlertConfError saying what is missing."""
    conf: dict[str, Any] = {
        "alert": alert_conf(alert, external_url),
        "dry_run": bool(dry_run or route.dry_run),
    }
    mapped = conf if not route.triage else {}
    for conf_field in route.conf:
        present, value = conf_field.value_for(conf["alert"])
        if present:
            mapped[conf_field.key] = value
    if route.triage:
        # triage_alert starts the runbook, with this conf and the run id the intake would have given it, only when
        # the problem is real (so a retried triage run never starts it twice).
        target = target_of(route, alert)
        conf["triage"] = {
            "rule": route.triage,
            "route": route.name,
            "target": target,
            "runbook_dag_id": route.runbook_dag_id,
            "runbook_run_id": run_id_for(route.runbook_dag_id, target, alert),
            "runbook_conf": mapped,
        }
    return conf


def alert_key(dag_id: str, target: str, alert: Alert) -> str:
    """Identity of one firing alert for one target: the same for every re-send and every HA replica."""
    text = f"{dag_id}\n{target}\n{alert.fingerprint}\n{alert.starts_at_utc}"
    return hashlib.sha256(text.encode()).hexdigest()


def run_id_for(dag_id: str, target: str, alert: Alert) -> str:
    """Deterministic dag_run_id: a re-delivered alert hits the (dag_id, run_id) unique constraint."""
    digest = alert_key(dag_id, target, alert)[:16]
    name = _slug(alert.alertname)[:60]
    where = _slug(target)[:80]
    parts = ["alert", name, where, digest] if where else ["alert", name, digest]
    return "__".join(parts)


def _slug(text: str) -> str:
    return _RUN_ID_UNSAFE.sub("-", text).strip("-")


def _convert(raw: Any, as_type: str, key: str) -> Any:
    try:
        if as_type == "str":
            return str(raw)
        if as_type == "int":
            return int(str(raw).strip())
        if as_type == "float":
            return float(str(raw).strip())
        if as_type == "bool":
            text = str(raw).strip().lower()
            if text in ("true", "1", "yes", "on"):
                return True
            if text in ("false", "0", "no", "off"):
                return False
            raise ValueError(text)
        if as_type == "list":
            return list(raw) if isinstance(raw, list) else [str(raw)]
        if as_type == "csv":
            return [part.strip() for part in str(raw).split(",") if part.strip()]
    except ValueError as err:
        raise AlertConfError(f"conf.{key}: {raw!r} is not a valid {as_type}") from err
    raise AlertConfError(f"conf.{key}: unknown type {as_type}")
