"""A moto server on loopback standing in for AWS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sandbox.ports import HOST, free_port, wait_for_port

REGION = "eu-central-1"


class MotoServer:
    """moto in server mode, so boto3 (through the Amazon provider) talks real HTTP to it."""

    def __init__(self, port: int | None = None, *, access_log: Path | None = None) -> None:
        self.port = port or free_port()
        self.access_log = access_log
        self._server: Any = None

    def start(self) -> MotoServer:
        from moto.server import ThreadedMotoServer

        if self.access_log is not None:
            # moto serves through werkzeug, whose access log otherwise goes to the console (with colour codes).
            from sandbox.console import to_file

            to_file("werkzeug", self.access_log)

        self._server = ThreadedMotoServer(ip_address=HOST, port=self.port, verbose=False)
        self._server.start()
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def reset(self) -> None:
        """Forget every resource (moto's reset API), so tests start from nothing."""
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(f"{self.url}/moto-api/reset", method="POST"), timeout=10)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def connection(self, region: str = REGION) -> dict[str, Any]:
        """Airflow ``aws`` Connection (JSON form) pointing every service at this server."""
        return {
            "conn_type": "aws",
            # Not "sandbox": Airflow's secrets masker hides a Connection's password wherever it appears, and the
            # environment is called "sandbox" in every message.
            "login": "moto-sandbox-key",
            "password": "moto-not-a-real-secret",
            "extra": {"region_name": region, "endpoint_url": self.url},
        }

    def client(self, service: str, region: str = REGION) -> Any:
        """A boto3 client against this server (for seeding and assertions)."""
        import boto3

        return boto3.client(
            service,
            region_name=region,
            endpoint_url=self.url,
            aws_access_key_id="moto-sandbox-key",
            aws_secret_access_key="moto-not-a-real-secret",
        )

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
