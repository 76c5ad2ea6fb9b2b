from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.redis_server import RedisServer
from tests.sops.redis_connections.crowd import Crowd


@pytest.fixture
def crowd(redis_server: RedisServer) -> Iterator[Crowd]:
    opened = Crowd(redis_server)
    try:
        yield opened
    finally:
        opened.close()
