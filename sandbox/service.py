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


class ServerService(Service):
    """A service that is one local server: :meth:`launch` builds it, start publishes it as ``published_as``.

    Subclasses set ``published_as`` (the key in ``ctx.published`` seeders look it up by) and implement :meth:`launch`.
    """

    order: ClassVar[int] = 10
    published_as: ClassVar[str] = ""

    def __init__(self) -> None:
        self.server: Any = None

    def launch(self, ctx: SandboxContext) -> Any:
        """The server, configured but not started (its ``start()`` returns it started)."""
        raise NotImplementedError

    def start(self, ctx: SandboxContext) -> None:
        self.server = self.launch(ctx).start()
        ctx.published[self.published_as] = self.server

    def stop(self) -> None:
        if self.server:
            self.server.stop()

    def running(self) -> Any:
        """The started server (connections and summary are asked for only after :meth:`start`)."""
        assert self.server is not None, f"{self.name} is not started"
        return self.server
