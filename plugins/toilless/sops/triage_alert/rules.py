"""Triage rules as data (include/triage_rules.yaml): how widespread an alert's problem is, and its known causes.

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
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")
#: Longest PromQL expression a rule may hold (Prometheus has no limit; a query string this long is a mistake).
MAX_QUERY_CHARS = 2000
#: Longest label value inserted into a query (Alertmanager labels are bounded by the intake's limits too).
MAX_LABEL_VALUE_CHARS = 1024
PROMTOOL_TIMEOUT_SECONDS = 20


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
class KnownCause:
    """A frequently seen cause with a documented answer: found when its log pattern is in the pod's log."""

    name: str
    response: str
    owner_channel: str
    log: LogCheck
    #: The cause is only dismissed when the rest of the pod is healthy (all pods ready, few restarts).
    require_pods_healthy: bool = True
    max_restarts: int = 3


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

    def query_for(self, labels: Mapping[str, str]) -> str:
        """The query with the alert's label values inserted as escaped PromQL strings."""

        def fill(match: re.Match[str]) -> str:
            value = str(labels.get(match.group(1), ""))
            if len(value) > MAX_LABEL_VALUE_CHARS:
                raise TriageRuleError(f"label {match.group(1)} is longer than {MAX_LABEL_VALUE_CHARS} characters")
            return promql_string(value)[1:-1]

        return _PLACEHOLDER.sub(fill, self.query)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "query": self.query, "noise_at_most": self.noise_at_most}


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
    _check_keys(spec, {"description", "query", "noise_at_most", "silence_minutes", "kubernetes", "known_causes"}, where)
    query = _require(spec, "query", str, where).strip()
    if not query or len(query) > MAX_QUERY_CHARS:
        raise TriageRuleError(f"{where}: query must be 1-{MAX_QUERY_CHARS} characters")
    for found in _PLACEHOLDER.finditer(query):
        if not any(safe.start() <= found.start() < safe.end() for safe in _SAFE_PLACEHOLDER.finditer(query)):
            raise TriageRuleError(
                f'{where}: {found.group(0)} may only be a whole matcher value: name="{found.group(0)}" (= or !=)'
            )
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
    causes = []
    for index, cause in enumerate(spec.get("known_causes") or []):
        cwhere = f"{where}: known_causes[{index}]"
        if not isinstance(cause, dict):
            raise TriageRuleError(f"{cwhere}: must be a mapping")
        _check_keys(cause, {"name", "response", "owner_channel", "log", "require_pods_healthy", "max_restarts"}, cwhere)
        log_spec = _require(cause, "log", dict, cwhere)
        _check_keys(log_spec, {"pattern", "min_matches", "max_bytes"}, f"{cwhere}: log")
        pattern = _require(log_spec, "pattern", str, f"{cwhere}: log")
        try:
            re.compile(pattern)
        except re.error as err:
            raise TriageRuleError(f"{cwhere}: log.pattern is not a valid regex: {err}") from err
        if kubernetes is None:
            raise TriageRuleError(f"{cwhere}: a log check needs the rule's kubernetes target")
        causes.append(
            KnownCause(
                name=_require(cause, "name", str, cwhere),
                response=_require(cause, "response", str, cwhere),
                owner_channel=_require(cause, "owner_channel", str, cwhere),
                log=LogCheck(
                    pattern=pattern,
                    min_matches=int(log_spec.get("min_matches", 1)),
                    max_bytes=int(log_spec.get("max_bytes", 262_144)),
                ),
                require_pods_healthy=bool(cause.get("require_pods_healthy", True)),
                max_restarts=int(cause.get("max_restarts", 3)),
            )
        )
    return TriageRule(
        name=name,
        description=str(spec.get("description", "")),
        query=query,
        noise_at_most=float(noise),
        silence_minutes=silence,
        kubernetes=kubernetes,
        known_causes=tuple(causes),
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
    failures = check_promql({name: sample_query(rule) for name, rule in rules.items()})
    if failures:
        raise TriageRuleError(
            "; ".join(f"triage rule {name}: PromQL does not parse: {error}" for name, error in sorted(failures.items()))
        )
