"""The contract every sandbox service follows."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from sandbox.ports import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class SandboxContext:
    """What services share: where state lives, and what earlier services published (endpoints, paths)."""

    home: Path  # the sandbox's state directory, under AIRFLOW_HOME
    include_dir: Path = PROJECT_ROOT / "include"
    published: dict[str, Any] = field(default_factory=dict)
    #: Use the services' preferred ports (make run) or always free ones (tests run beside a make run).
    preferred_ports: bool = True

    def port(self, preferred: int) -> int:
        return free_port(preferred if self.preferred_ports else None)


class Service:
    """A local stand-in. Subclasses set ``name`` and ``order`` and override what they need.

    ``order``: 10 for servers (Slack sink, moto), 50 for seeders that put data into them, 90 for anything last.
    """

    name: ClassVar[str] = ""
    order: ClassVar[int] = 50
    description: ClassVar[str] = ""

    def start(self, ctx: SandboxContext) -> None:
        """Start servers / write seed data. Publish what others need in ``ctx.published``."""

    def stop(self) -> None:
        """Stop what :meth:`start` started."""

    def connections(self, ctx: SandboxContext) -> dict[str, dict[str, Any]]:
        """Airflow Connections (conn_id → JSON form) pointing at this service."""
        return {}

    def variables(self, ctx: SandboxContext) -> dict[str, str]:
        """Airflow Variables (key → value) the sandbox needs, e.g. a config override pointing at demo data."""
        return {}

    def summary(self, ctx: SandboxContext) -> str:
        """One line for the start-up banner."""
        return self.description
