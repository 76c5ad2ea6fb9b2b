"""AWS: a moto server; SOP seeders (order 50) put their resources into it through ``ctx.published["moto"]``."""

from __future__ import annotations

from typing import Any

from sandbox.moto_server import MotoServer
from sandbox.service import SandboxContext, ServerService


class AwsService(ServerService):
    name = "aws"
    description = "AWS (moto server)"
    published_as = "moto"

    @property
    def moto(self) -> MotoServer | None:
        return self.server

    def launch(self, ctx: SandboxContext) -> MotoServer:
        return MotoServer(port=ctx.port(5055), access_log=ctx.home / "moto.log")

    def connections(self, ctx: SandboxContext) -> dict[str, dict[str, Any]]:
        return {"aws_default": self.running().connection()}

    def summary(self, ctx: SandboxContext) -> str:
        return f"AWS stand-in (moto) on {self.running().url}; access log in {ctx.home / 'moto.log'}"
