"""Triage rules as data (include/triage_rules.yaml): how widespread an alert's problem is, and its known causes.

Over 400 lines because the rule file's whole schema (query, trend, known causes and their counts) is checked in
one place when the routes load; splitting the trend and count checks out is the next step.

Pure (no Airflow import). A rule is loaded and checked when the alert routes load (``toilless.intake.routing``): a
rule that is missing, malformed, or whose PromQL does not parse refuses the routes file, naming the route, so a
typo is found when the file is deployed, not at 3 a.m. when the alert fires.

PromQL is checked offline with ``promtool check rules`` (Prometheus' own parser, shipped with the Debian package
``prometheus``) on a generated rule file: no server is needed, and the parser is the one the server runs. A rule's
query may use the alert's labels only as whole matcher values, ``name="{{ labels.x }}"`` (or ``!=``): the value is
inserted as an escaped PromQL string, so a hostile label cannot change the query (never inside a regex, never bare).
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

#: ``"{{ labels.name }}"``, allowed only as the value of an = or != matcher.
_PLACEHOLDER = re.compile(r"\{\{\s*labels\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_SAFE_PLACEHOLDER = re.compile(r'(?<![=!])(?:!=|=)\s*"\{\{\s*labels\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}"')
_RULE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}\Z")
_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}\Z")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")
#: Longest PromQL expression a rule may hold (Prometheus has no limit; a query string this long is a mistake).
MAX_QUERY_CHARS = 2000
#: Longest label value inserted into a query (Alertmanager labels are bounded by the intake's limits too).
MAX_LABEL_VALUE_CHARS = 1024
PROMTOOL_TIMEOUT_SECONDS = 20
#: Most points a trend reads (Prometheus refuses more than 11,000 per series; a trend needs far fewer).
MAX_TREND_POINTS = 11_000


class TriageRuleError(ValueError):
    """A triage rule is wrong (unknown, malformed, or its PromQL does not parse); the message says which and why."""


@dataclass(frozen=True)
class LogCheck:
    """A pattern searched in the newest pod's log (e.g. the vault-token error)."""

    pattern: str
    min_matches: int = 1
    max_bytes: int = 262_144

    @property
    def regex(self) -> re.Pattern[str]:
        return re.compile(self.pattern)


@dataclass(frozen=True)
class KubernetesTarget:
    """Which Deployment a rule's checks look at: literals or ``{{ labels.x }}`` taken from the alert."""

    namespace: str
    deployment: str
    container: str = ""
    conn_id: str = "kubernetes_default"

    def resolve(self, labels: Mapping[str, str]) -> dict[str, str]:
        """Namespace / deployment / container for one alert; DNS-1123 checked (the Kubernetes API's contract)."""
        resolved = {
            "conn_id": self.conn_id,
            "namespace": _fill_plain(self.namespace, labels),
            "deployment": _fill_plain(self.deployment, labels),
            "container": _fill_plain(self.container, labels) if self.container else "",
        }
        for key in ("namespace", "deployment", "container"):
            value = resolved[key]
            if (value or key != "container") and not _DNS1123_LABEL.match(value):
                raise TriageRuleError(f"kubernetes {key} {value[:80]!r} is not a DNS-1123 label (lower-case, 63 max)")
        return resolved


@dataclass(frozen=True)
class CountCheck:
    """ "Once or twice is a typo, many go to the owner": how often a known cause was seen, against a threshold.

    Counted from the log pattern's matching lines (those in the last ``window_minutes`` when a line starts with a
    timestamp), or from ``query`` (PromQL, e.g. ``sum by (topic) (increase(...[1h]))``) when given. Under
    ``at_least``: dismissed with the cause's response. At or over: the owners of the ``owner_by`` values (a named
    group of the log pattern or a label of the query's series, e.g. ``topic``) are told, with the numbers; owners
    come from the config's ``owner_map`` (include/config/triage_alert.yaml), values nobody owns are named.
    """

    at_least: int
    window_minutes: int = 60
    query: str = ""
    owner_by: str = ""
    owner_map: str = "topic_owners"
    owner_response: str = ""

    def query_for(self, labels: Mapping[str, str]) -> str:
        return fill_query(self.query, labels)


@dataclass(frozen=True)
class TrendCheck:
    """ "Has it been rising for a long time, since when": a range query walked back from now (see ``trend.py``).

    ``query`` is one series (sum it); it is read over the last ``range_minutes`` every ``step_seconds``. Rising at
    ``rising_per_hour_at_least`` or more for ``steady_for_minutes`` or more, without the rise being one jump, is
    *rising*: ``on_rising`` (real, or count: the count decides). Anything else is *flat* (one blip included):
    ``on_flat`` (noise, or count).
    """

    query: str
    range_minutes: int
    step_seconds: int
    rising_per_hour_at_least: float
    steady_for_minutes: int
    on_rising: str = "real"
    on_flat: str = "count"
    unit: str = ""

    def query_for(self, labels: Mapping[str, str]) -> str:
        return fill_query(self.query, labels)


@dataclass(frozen=True)
class KnownCause:
    """A frequently seen cause with a documented answer: found when its log pattern is in the pod's log (or, for a
    count with a query, when the query counts more than zero)."""

    name: str
    response: str
    owner_channel: str
    log: LogCheck | None
    #: The cause is only dismissed when the rest of the pod is healthy (all pods ready, few restarts).
    require_pods_healthy: bool = True
    max_restarts: int = 3
    count: CountCheck | None = None


@dataclass(frozen=True)
class TriageRule:
    name: str
    description: str
    #: PromQL giving "how many" (e.g. 5xx over the last hour); summed over the series it returns.
    query: str
    #: At most this many (inclusive) is noise: acknowledged and silenced. More is real: the runbook starts.
    noise_at_most: float
    #: How long a noise silence lasts (bounded by the configured maximum, checked when silencing).
    silence_minutes: int
    kubernetes: KubernetesTarget | None = None
    known_causes: tuple[KnownCause, ...] = field(default_factory=tuple)
    trend: TrendCheck | None = None

    def query_for(self, labels: Mapping[str, str]) -> str:
        """The query with the alert's label values inserted as escaped PromQL strings."""
        return fill_query(self.query, labels)

    def expressions(self, labels: Mapping[str, str]) -> dict[str, str]:
        """Every PromQL expression of the rule (``query``, ``trend``, each count's query), filled for ``labels``."""
        found = {"query": self.query_for(labels)}
        if self.trend is not None:
            found["trend"] = self.trend.query_for(labels)
        for cause in self.known_causes:
            if cause.count is not None and cause.count.query:
                found[f"known_causes.{cause.name}.count"] = cause.count.query_for(labels)
        return found

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "query": self.query, "noise_at_most": self.noise_at_most}


def fill_query(template: str, labels: Mapping[str, str]) -> str:
    """``template`` with the alert's label values inserted as escaped PromQL strings."""

    def fill(match: re.Match[str]) -> str:
        value = str(labels.get(match.group(1), ""))
        if len(value) > MAX_LABEL_VALUE_CHARS:
            raise TriageRuleError(f"label {match.group(1)} is longer than {MAX_LABEL_VALUE_CHARS} characters")
        return promql_string(value)[1:-1]

    return _PLACEHOLDER.sub(fill, template)


def promql_string(value: str) -> str:
    """``value`` as a double-quoted PromQL string literal (Go escaping: backslash, quote, control characters)."""
    out = []
    for char in value:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _fill_plain(template: str, labels: Mapping[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda match: str(labels.get(match.group(1), "")), template)


def _require(spec: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = spec.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise TriageRuleError(f"{where}: {key} is required ({getattr(kind, '__name__', kind)})")
    return value


def _check_keys(spec: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = set(spec) - known
    if unknown:
        raise TriageRuleError(f"{where}: unknown keys {sorted(unknown)} (known: {', '.join(sorted(known))})")


def parse_rule(name: str, spec: Any) -> TriageRule:
    """One rule from its YAML mapping; the PromQL is checked separately (:func:`check_promql`)."""
    where = f"triage rule {name}"
    if not _RULE_NAME.match(name):
        raise TriageRuleError(f"{where}: a rule name is lower-case letters, digits, - and _")
    if not isinstance(spec, dict):
        raise TriageRuleError(f"{where}: must be a mapping")
    _check_keys(
        spec, {"description", "query", "noise_at_most", "silence_minutes", "kubernetes", "known_causes", "trend"}, where
    )
    query = _query(spec, where)
    noise = _require(spec, "noise_at_most", (int, float), where)
    silence = _require(spec, "silence_minutes", int, where)
    if noise < 0 or silence <= 0:
        raise TriageRuleError(f"{where}: noise_at_most must be >= 0 and silence_minutes > 0")
    kubernetes = None
    if spec.get("kubernetes") is not None:
        k8s = spec["kubernetes"]
        if not isinstance(k8s, dict):
            raise TriageRuleError(f"{where}: kubernetes must be a mapping")
        _check_keys(k8s, {"namespace", "deployment", "container", "conn_id"}, f"{where}: kubernetes")
        kubernetes = KubernetesTarget(
            namespace=_require(k8s, "namespace", str, f"{where}: kubernetes"),
            deployment=_require(k8s, "deployment", str, f"{where}: kubernetes"),
            container=str(k8s.get("container") or ""),
            conn_id=str(k8s.get("conn_id") or "kubernetes_default"),
        )
    causes = [
        _parse_cause(cause, f"{where}: known_causes[{index}]", kubernetes)
        for index, cause in enumerate(spec.get("known_causes") or [])
    ]
    trend = _parse_trend(spec["trend"], f"{where}: trend") if spec.get("trend") is not None else None
    return TriageRule(
        name=name,
        description=str(spec.get("description", "")),
        query=query,
        noise_at_most=float(noise),
        silence_minutes=silence,
        kubernetes=kubernetes,
        known_causes=tuple(causes),
        trend=trend,
    )


def _query(spec: Mapping[str, Any], where: str, key: str = "query") -> str:
    """A PromQL template: bounded, and the alert's labels only as whole matcher values."""
    query = _require(spec, key, str, where).strip()
    if not query or len(query) > MAX_QUERY_CHARS:
        raise TriageRuleError(f"{where}: {key} must be 1-{MAX_QUERY_CHARS} characters")
    for found in _PLACEHOLDER.finditer(query):
        if not any(safe.start() <= found.start() < safe.end() for safe in _SAFE_PLACEHOLDER.finditer(query)):
            raise TriageRuleError(
                f'{where}: {found.group(0)} may only be a whole matcher value: name="{found.group(0)}" (= or !=)'
            )
    return query


def _positive_int(spec: Mapping[str, Any], key: str, where: str, default: int | None = None) -> int:
    value = spec.get(key, default)
    # bool is an int in Python, and 2.5 or "5" is a typo: a threshold is a whole number of times.
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise TriageRuleError(f"{where}: {key} must be a positive integer, not {value!r}")
    return value


def _parse_cause(cause: Any, where: str, kubernetes: KubernetesTarget | None) -> KnownCause:
    if not isinstance(cause, dict):
        raise TriageRuleError(f"{where}: must be a mapping")
    _check_keys(
        cause, {"name", "response", "owner_channel", "log", "require_pods_healthy", "max_restarts", "count"}, where
    )
    count = _parse_count(cause["count"], f"{where}: count") if cause.get("count") is not None else None
    log_check = None
    if cause.get("log") is not None or count is None or not count.query:
        log_spec = _require(cause, "log", dict, where)
        _check_keys(log_spec, {"pattern", "min_matches", "max_bytes"}, f"{where}: log")
        pattern = _require(log_spec, "pattern", str, f"{where}: log")
        try:
            compiled = re.compile(pattern)
        except re.error as err:
            raise TriageRuleError(f"{where}: log.pattern is not a valid regex: {err}") from err
        if count is not None and count.owner_by and not count.query and count.owner_by not in compiled.groupindex:
            raise TriageRuleError(f"{where}: count.owner_by {count.owner_by!r} is not a named group of log.pattern")
        log_check = LogCheck(
            pattern=pattern,
            min_matches=_positive_int(log_spec, "min_matches", f"{where}: log", 1),
            max_bytes=_positive_int(log_spec, "max_bytes", f"{where}: log", 262_144),
        )
    require_healthy = cause.get("require_pods_healthy", True)
    if not isinstance(require_healthy, bool):
        raise TriageRuleError(f"{where}: require_pods_healthy must be true or false")
    if kubernetes is None and (log_check is not None or require_healthy):
        raise TriageRuleError(f"{where}: a log check (or require_pods_healthy) needs the rule's kubernetes target")
    return KnownCause(
        name=_require(cause, "name", str, where),
        response=_require(cause, "response", str, where),
        owner_channel=_require(cause, "owner_channel", str, where),
        log=log_check,
        require_pods_healthy=require_healthy,
        max_restarts=int(cause.get("max_restarts", 3)),
        count=count,
    )


def _parse_count(spec: Any, where: str) -> CountCheck:
    if not isinstance(spec, dict):
        raise TriageRuleError(f"{where}: must be a mapping")
    _check_keys(spec, {"at_least", "window_minutes", "query", "owner_by", "owner_map", "owner_response"}, where)
    owner_by = spec.get("owner_by") or ""
    if not isinstance(owner_by, str) or (owner_by and not _LABEL_NAME.match(owner_by)):
        raise TriageRuleError(f"{where}: owner_by must be a label / group name")
    owner_map = spec.get("owner_map", "topic_owners")
    if not isinstance(owner_map, str) or not _LABEL_NAME.match(owner_map):
        raise TriageRuleError(f"{where}: owner_map names a mapping of include/config/triage_alert.yaml")
    return CountCheck(
        at_least=_positive_int(spec, "at_least", where),
        window_minutes=_positive_int(spec, "window_minutes", where, 60),
        query=_query(spec, where) if spec.get("query") is not None else "",
        owner_by=owner_by,
        owner_map=owner_map,
        owner_response=str(spec.get("owner_response") or ""),
    )


#: What a trend may lead to: ``count`` leaves the verdict to the rule's count.
TREND_OUTCOMES = {"on_rising": ("real", "count"), "on_flat": ("noise", "count")}


def _parse_trend(spec: Any, where: str) -> TrendCheck:
    if not isinstance(spec, dict):
        raise TriageRuleError(f"{where}: must be a mapping")
    keys = {"query", "range_minutes", "step_seconds", "rising_per_hour_at_least", "steady_for_minutes", "unit"}
    _check_keys(spec, keys | set(TREND_OUTCOMES), where)
    range_minutes = _positive_int(spec, "range_minutes", where)
    step_seconds = _positive_int(spec, "step_seconds", where)
    if range_minutes * 60 / step_seconds > MAX_TREND_POINTS:
        raise TriageRuleError(
            f"{where}: {range_minutes} min every {step_seconds}s is more than {MAX_TREND_POINTS:,} points "
            "(Prometheus refuses more than 11,000 per series): use a longer step"
        )
    if range_minutes * 60 < 2 * step_seconds:
        raise TriageRuleError(f"{where}: range_minutes must hold at least two steps")
    rate = spec.get("rising_per_hour_at_least")
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not math.isfinite(rate) or rate <= 0:
        raise TriageRuleError(f"{where}: rising_per_hour_at_least must be a positive number, not {rate!r}")
    steady = _positive_int(spec, "steady_for_minutes", where)
    if steady > range_minutes:
        raise TriageRuleError(f"{where}: steady_for_minutes ({steady}) is longer than range_minutes ({range_minutes})")
    outcomes = {}
    for key, allowed in TREND_OUTCOMES.items():
        outcomes[key] = spec.get(key, allowed[0] if key == "on_rising" else "count")
        if outcomes[key] not in allowed:
            raise TriageRuleError(f"{where}: {key} must be one of {', '.join(allowed)}, not {outcomes[key]!r}")
    unit = spec.get("unit", "")
    if unit not in ("", "bytes"):
        raise TriageRuleError(f"{where}: unit must be bytes or left out")
    return TrendCheck(
        query=_query(spec, where),
        range_minutes=range_minutes,
        step_seconds=step_seconds,
        rising_per_hour_at_least=float(rate),
        steady_for_minutes=steady,
        on_rising=outcomes["on_rising"],
        on_flat=outcomes["on_flat"],
        unit=unit,
    )


def parse_rules(data: Any) -> dict[str, TriageRule]:
    if not isinstance(data, dict) or not isinstance(data.get("rules"), dict):
        raise TriageRuleError("the triage rules file must be a mapping with a 'rules' mapping")
    return {str(name): parse_rule(str(name), spec) for name, spec in data["rules"].items()}


def load_rules(path: Path) -> dict[str, TriageRule]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise TriageRuleError(f"cannot read triage rules file {path}: {err}") from err
    except yaml.YAMLError as err:
        raise TriageRuleError(f"triage rules file {path} is not valid YAML: {err}") from err
    return parse_rules(data)


def sample_query(rule: TriageRule) -> str:
    """The rule's query with every placeholder filled with a sample value: what the parse check reads."""
    return rule.query_for({})


def sample_expressions(rules: Mapping[str, TriageRule]) -> dict[str, str]:
    """Every expression of every rule, keyed ``rule`` (its query) or ``rule:part`` (trend, a count's query)."""
    found: dict[str, str] = {}
    for name, rule in rules.items():
        for part, expr in rule.expressions({}).items():
            found[name if part == "query" else f"{name}:{part}"] = expr
    return found


def failures_by_rule(failures: Mapping[str, str]) -> dict[str, str]:
    """:func:`check_promql` failures of :func:`sample_expressions`, by rule name (``part: error``)."""
    found: dict[str, str] = {}
    for key, error in sorted(failures.items()):
        rule, _, part = key.partition(":")
        found[rule] = "; ".join(filter(None, [found.get(rule, ""), f"{part}: {error}" if part else error]))
    return found


#: Expressions promtool accepted (by hash): the intake re-reads routes when the file changes; don't spawn again.
_PARSED: set[str] = set()


def promtool_path() -> str | None:
    return os.environ.get("TOILLESS_PROMTOOL") or shutil.which("promtool")


def check_promql(expressions: Mapping[str, str]) -> dict[str, str]:
    """Parse each ``{name: expr}`` with ``promtool check rules`` offline; ``{name: error}`` for those that fail.

    Raises TriageRuleError when promtool is missing (the check cannot be skipped silently: install the Debian
    package ``prometheus`` or set TOILLESS_PROMTOOL).
    """
    todo = {name: expr for name, expr in expressions.items() if _digest(expr) not in _PARSED}
    if not todo:
        return {}
    promtool = promtool_path()
    if not promtool:
        raise TriageRuleError(
            "promtool is not installed: triage rules' PromQL cannot be checked (Debian package prometheus, "
            "or TOILLESS_PROMTOOL=/path/to/promtool)"
        )
    names = list(todo)
    # One file, one recording rule per expression: promtool names the failing rule by its index in the group.
    group = {
        "name": "toilless-triage-check",
        "rules": [{"record": f"toilless_check_{index}", "expr": todo[name]} for index, name in enumerate(names)],
    }
    with tempfile.TemporaryDirectory(prefix="toilless-promql-") as work:
        path = Path(work) / "rules.yml"
        path.write_text(yaml.safe_dump({"groups": [group]}), encoding="utf-8")
        try:
            result = subprocess.run(
                [promtool, "check", "rules", str(path)],
                capture_output=True,
                text=True,
                timeout=PROMTOOL_TIMEOUT_SECONDS,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            raise TriageRuleError(f"promtool could not check the triage rules' PromQL: {err}") from err
    output = (result.stdout + result.stderr).replace(str(path), "rules")
    failures: dict[str, str] = {}
    for index, name in enumerate(names):
        found = re.search(rf'"toilless_check_{index}": (.*)', output)
        if found:
            failures[name] = found.group(1).strip()[:300]
    if result.returncode != 0 and not failures:
        raise TriageRuleError(f"promtool failed without naming a rule: {output.strip()[:300]}")
    for name in names:
        if name not in failures:
            _PARSED.add(_digest(todo[name]))
    return failures


def _digest(expr: str) -> str:
    return hashlib.sha256(expr.encode()).hexdigest()


def check_rules(rules: Mapping[str, TriageRule]) -> None:
    """Every rule's PromQL parses, or TriageRuleError naming the rule and promtool's error."""
    failures = failures_by_rule(check_promql(sample_expressions(rules)))
    if failures:
        raise TriageRuleError(
            "; ".join(f"triage rule {name}: PromQL does not parse: {error}" for name, error in sorted(failures.items()))
        )
