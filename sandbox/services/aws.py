"""AWS: a moto server; SOP seeders (order 50) put their resources into it through ``ctx.published["moto"]``."""

from __future__ import annotations

from typing import Any

from sandbox.moto_server import MotoServer
from sandbox.service import SandboxContext, Service


class AwsService(Service):
    name = "aws"
    order = 10
    description = "AWS (moto server)"

    def __init__(self) -> None:
        self.moto: MotoServer | None = None

    def start(self, ctx: SandboxContext) -> None:
        self.moto = MotoServer(port=ctx.port(5055), access_log=ctx.home / "moto.log").start()
        ctx.published["moto"] = self.moto

    def stop(self) -> None:
        if self.moto:
            self.moto.stop()

    def connections(self, ctx: SandboxContext) -> dict[str, dict[str, Any]]:
        assert self.moto is not None
        return {"aws_default": self.moto.connection()}

    def summary(self, ctx: SandboxContext) -> str:
        assert self.moto is not None
        return f"AWS stand-in (moto) on {self.moto.url}; access log in {ctx.home / 'moto.log'}"
