"""The capacity plan: replicas, memory and CPU per container from the release's load figures. Pure, no Airflow.

The seed's release: 3 replicas serve 1300 concurrent users at 500 each; containers use 85% of their memory; the
release adds 25% memory per user and doubles the users (2600 concurrent). Replicas are
``ceil(users x (1 + headroom) / users per replica)``: 2600 / 500 -> 6. Memory per pod scales with the users each pod
serves and the growth per user: ``used now x (users per pod after / users per pod now) x (1 + growth) x (1 + headroom)``,
rounded up to the configured step (a valid quantity). CPU likewise. A plan never goes below what runs now: a
release is no time to shrink (and never below the current replicas, which the apply step checks again when it acts).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from toilless.sops.release_capacity_plan.contracts import (
    ContractError,
    check_label,
    cpu_millicores,
    format_cpu,
    format_memory,
    round_up,
)


@dataclass(frozen=True)
class Figures:
    """The release's load figures and the planning policy (Params over configuration, validated)."""

    current_concurrent_users: int
    expected_concurrent_users: int
    users_per_replica: int
    headroom_pct: float = 0.0
    memory_utilisation_pct: float = 100.0
    memory_growth_per_user_pct: float = 0.0
    cpu_utilisation_pct: float = 100.0
    cpu_growth_per_user_pct: float = 0.0
    memory_step_bytes: int = 64 * 2**20
    cpu_step_millicores: int = 50
    max_replicas: int = 100

    def __post_init__(self) -> None:
        check_whole(self.current_concurrent_users, "current concurrent users", minimum=1)
        check_whole(self.expected_concurrent_users, "expected concurrent users", minimum=0)
        check_whole(self.users_per_replica, "users per replica", minimum=1)
        check_whole(self.max_replicas, "max replicas", minimum=1)
        check_whole(self.memory_step_bytes, "memory step (bytes)", minimum=1)
        check_whole(self.cpu_step_millicores, "CPU step (millicores)", minimum=1)
        check_percent(self.headroom_pct, "headroom %", maximum=1000)
        check_percent(self.memory_growth_per_user_pct, "memory growth per user %", maximum=1000)
        check_percent(self.cpu_growth_per_user_pct, "CPU growth per user %", maximum=1000)
        check_percent(self.memory_utilisation_pct, "memory utilisation %", maximum=1000, positive=True)
        check_percent(self.cpu_utilisation_pct, "CPU utilisation %", maximum=1000, positive=True)


def check_whole(value: object, what: str, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ContractError(f"{what} must be a whole number, got {value!r}")
    if value < minimum:
        raise ContractError(f"{what} must be at least {minimum}, got {value}")


def check_percent(value: object, what: str, *, maximum: float, positive: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ContractError(f"{what} must be a finite number, got {value!r}")
    if value < 0 or (positive and value == 0) or value > maximum:
        low = "above 0" if positive else "at least 0"
        raise ContractError(f"{what} must be {low} and at most {maximum:g}, got {value:g}")


@dataclass(frozen=True)
class ContainerNow:
    """One container's resources as the Deployment declares them (bytes, millicores; None: not set)."""

    name: str
    memory_request: int | None = None
    memory_limit: int | None = None
    cpu_request: int | None = None
    cpu_limit: int | None = None
    #: Peak usage per pod measured by a metrics source (bytes, millicores); None: use the figures' utilisation.
    memory_used: int | None = None
    cpu_used: int | None = None


@dataclass(frozen=True)
class DeploymentNow:
    namespace: str
    name: str
    replicas: int
    containers: tuple[ContainerNow, ...]


@dataclass(frozen=True)
class NewComponent:
    """A component the release adds, from its stated needs (the seed: an order processor needing about 1 GiB for a
    full queue and twice the app's CPU)."""

    name: str
    memory: int
    replicas: int = 1
    #: CPU as a multiple of the app's planned CPU request (the seed: 2), or a fixed request in millicores.
    cpu_factor_of_app: float | None = None
    cpu: int | None = None
    image: str = ""


@dataclass(frozen=True)
class Change:
    """One row of the before -> after table."""

    target: str
    field: str
    before: str
    after: str
    reason: str


@dataclass
class ContainerPlan:
    name: str
    memory_request: str | None
    memory_limit: str | None
    cpu_request: str | None
    cpu_limit: str | None


@dataclass
class DeploymentPlan:
    namespace: str
    name: str
    replicas_before: int
    replicas: int
    containers: list[ContainerPlan] = field(default_factory=list)
    changed: bool = False


@dataclass
class CapacityPlan:
    deployments: list[DeploymentPlan]
    new_components: list[dict[str, Any]]
    changes: list[Change]
    notes: list[str]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def replicas_for(users: int, users_per_replica: int, headroom_pct: float = 0.0) -> int:
    """``ceil(users x (1 + headroom) / users per replica)``, at least 1 (exact: no float rounding at the boundary)."""
    check_whole(users, "concurrent users", minimum=0)
    check_whole(users_per_replica, "users per replica", minimum=1)
    needed = Decimal(users) * (1 + Decimal(str(headroom_pct)) / 100) / users_per_replica
    return max(1, math.ceil(needed))


def plan_capacity(
    deployments: Sequence[DeploymentNow], figures: Figures, new_components: Sequence[NewComponent] = ()
) -> CapacityPlan:
    """The plan for every Deployment serving the release's users, plus the new components."""
    if not deployments:
        raise ContractError("name at least one Deployment to plan")
    changes: list[Change] = []
    notes: list[str] = []
    planned: list[DeploymentPlan] = []
    computed = replicas_for(figures.expected_concurrent_users, figures.users_per_replica, figures.headroom_pct)
    headroom = 1 + Decimal(str(figures.headroom_pct)) / 100
    for deployment in deployments:
        target = f"{deployment.namespace}/{deployment.name}"
        replicas = max(computed, deployment.replicas)
        if computed > figures.max_replicas:
            raise ContractError(
                f"{target}: {computed} replicas needed for {figures.expected_concurrent_users} users exceeds "
                f"max_replicas {figures.max_replicas}: raise the cap in the configuration or check the figures"
            )
        why = (
            f"ceil({figures.expected_concurrent_users} users x {headroom:g} / {figures.users_per_replica} per "
            f"replica) = {computed}"
        )
        if computed < deployment.replicas:
            why += f"; kept the current {deployment.replicas} (never scale below what runs during a release)"
        changes.append(Change(target, "replicas", str(deployment.replicas), str(replicas), why))
        # Users each pod serves now and after: memory per pod follows them.
        now_replicas = max(deployment.replicas, 1)
        per_pod_ratio = (Decimal(figures.expected_concurrent_users) / replicas) / (
            Decimal(figures.current_concurrent_users) / now_replicas
        )
        plan = DeploymentPlan(deployment.namespace, deployment.name, deployment.replicas, replicas)
        plan.changed = replicas != deployment.replicas
        for container in deployment.containers:
            where = f"{target} {container.name}"
            memory_request, memory_limit, memory_rows = _plan_memory(container, where, figures, per_pod_ratio, headroom)
            cpu_request, cpu_limit, cpu_rows = _plan_cpu(container, where, figures, per_pod_ratio, headroom)
            changes.extend(memory_rows + cpu_rows)
            plan.changed |= any(row.before != row.after for row in memory_rows + cpu_rows)
            plan.containers.append(ContainerPlan(container.name, memory_request, memory_limit, cpu_request, cpu_limit))
        planned.append(plan)
    components = [_plan_component(component, planned, figures, headroom, changes) for component in new_components]
    if not any(d.changed for d in planned):
        notes.append("every Deployment already has what the release needs: nothing to apply")
    return CapacityPlan(planned, components, changes, notes)


def _plan_memory(
    container: ContainerNow, where: str, figures: Figures, per_pod_ratio: Decimal, headroom: Decimal
) -> tuple[str | None, str | None, list[Change]]:
    basis = container.memory_limit or container.memory_request
    request = container.memory_request
    limit = container.memory_limit
    if not basis:
        return None, None, [Change(where, "memory", "not set", "not set", "no request or limit to plan from")]
    if container.memory_used is not None:
        used = Decimal(container.memory_used)
        source = f"{_mib(used)} used now (measured peak)"
    else:
        used = Decimal(basis) * Decimal(str(figures.memory_utilisation_pct)) / 100
        source = f"{format_memory(basis)} x {figures.memory_utilisation_pct:g}% used = {_mib(used)} now"
    growth = 1 + Decimal(str(figures.memory_growth_per_user_pct)) / 100
    needed = round_up(used * per_pod_ratio * growth * headroom, figures.memory_step_bytes)
    new_request = max(needed, request or 0)
    reason = (
        f"{source}; x {per_pod_ratio:.3g} "
        f"users per pod x {growth:g} per user x {headroom:g} headroom, up to a {format_memory(figures.memory_step_bytes)}"
        f" step = {format_memory(needed)}"
    )
    if request and needed < request:
        reason += f"; kept the current {format_memory(request)}"
    rows = [Change(where, "memory request", _memory_or_unset(request), format_memory(new_request), reason)]
    new_limit = None
    if limit is not None:
        new_limit = max(limit, new_request)
        rows.append(
            Change(
                where,
                "memory limit",
                format_memory(limit),
                format_memory(new_limit),
                "raised to the new request" if new_limit != limit else "kept: already holds the new request",
            )
        )
    return format_memory(new_request), (format_memory(new_limit) if new_limit is not None else None), rows


def _plan_cpu(
    container: ContainerNow, where: str, figures: Figures, per_pod_ratio: Decimal, headroom: Decimal
) -> tuple[str | None, str | None, list[Change]]:
    basis = container.cpu_request or container.cpu_limit
    request, limit = container.cpu_request, container.cpu_limit
    if not basis:
        return None, None, [Change(where, "cpu", "not set", "not set", "no request or limit to plan from")]
    if container.cpu_used is not None:
        used = Decimal(container.cpu_used)
        source = f"{format_cpu(container.cpu_used)} used now (measured peak)"
    else:
        used = Decimal(basis) * Decimal(str(figures.cpu_utilisation_pct)) / 100
        source = f"{format_cpu(basis)} x {figures.cpu_utilisation_pct:g}% used"
    growth = 1 + Decimal(str(figures.cpu_growth_per_user_pct)) / 100
    needed = round_up(used * per_pod_ratio * growth * headroom, figures.cpu_step_millicores)
    new_request = max(needed, request or 0)
    reason = (
        f"{source}; x {per_pod_ratio:.3g} users per pod x "
        f"{growth:g} per user x {headroom:g} headroom, up to a {format_cpu(figures.cpu_step_millicores)} step = "
        f"{format_cpu(needed)}"
    )
    if request and needed < request:
        reason += f"; kept the current {format_cpu(request)}"
    rows = [
        Change(where, "cpu request", format_cpu(request) if request else "not set", format_cpu(new_request), reason)
    ]
    new_limit = None
    if limit is not None:
        new_limit = max(limit, new_request)
        rows.append(
            Change(
                where,
                "cpu limit",
                format_cpu(limit),
                format_cpu(new_limit),
                "raised to the new request" if new_limit != limit else "kept: already holds the new request",
            )
        )
    return format_cpu(new_request), (format_cpu(new_limit) if new_limit is not None else None), rows


def _plan_component(
    component: NewComponent,
    planned: Sequence[DeploymentPlan],
    figures: Figures,
    headroom: Decimal,
    changes: list[Change],
) -> dict[str, Any]:
    name = check_label(component.name, "new component name")
    memory = round_up(Decimal(component.memory) * headroom, figures.memory_step_bytes)
    if component.cpu is not None:
        cpu = round_up(Decimal(component.cpu) * headroom, figures.cpu_step_millicores)
        cpu_reason = f"stated {format_cpu(component.cpu)} x {headroom:g} headroom"
    elif component.cpu_factor_of_app is not None:
        app_cpu = _app_cpu(planned)
        if app_cpu is None:
            raise ContractError(f"new component {name}: CPU relative to the app, but the app has no CPU request")
        cpu = round_up(Decimal(app_cpu) * Decimal(str(component.cpu_factor_of_app)), figures.cpu_step_millicores)
        cpu_reason = f"{component.cpu_factor_of_app:g} x the app's planned {format_cpu(app_cpu)}"
    else:
        raise ContractError(f"new component {name}: give its CPU (cpu) or a multiple of the app's (cpu_factor_of_app)")
    namespace = planned[0].namespace
    target = f"{namespace}/{name} (new)"
    changes.append(Change(target, "replicas", "-", str(component.replicas), "stated by the release"))
    changes.append(
        Change(
            target,
            "memory request",
            "-",
            format_memory(memory),
            f"stated {format_memory(component.memory)} x {headroom:g} headroom, up to a "
            f"{format_memory(figures.memory_step_bytes)} step",
        )
    )
    changes.append(Change(target, "cpu request", "-", format_cpu(cpu), cpu_reason))
    return {
        "namespace": namespace,
        "name": name,
        "replicas": component.replicas,
        "memory_request": format_memory(memory),
        "cpu_request": format_cpu(cpu),
        "image": component.image,
    }


def _app_cpu(planned: Sequence[DeploymentPlan]) -> int | None:
    """The first planned Deployment's first container's CPU request (the app the seed compares against)."""
    for container in planned[0].containers:
        if container.cpu_request:
            return cpu_millicores(container.cpu_request, "app CPU")
    return None


def _memory_or_unset(value: int | None) -> str:
    return format_memory(value) if value else "not set"


def _mib(amount: Decimal) -> str:
    return f"{amount / 2**20:.1f}Mi"
