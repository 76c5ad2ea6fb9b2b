"""Redis through an Airflow Connection of type ``redis``, on redis-py.

The Redis provider (apache-airflow-providers-redis) is not installed here, and its ``RedisHook`` builds a client with
no socket timeouts (a Redis that stops answering would hold a worker slot forever, and the SOPs' time caps could not
hold) and without a client name (the connections SOP must tell its own connection from the ones it may end). This hook
reads the same Connection fields the provider does (host, port, login, password; ``extra``: ``db`` and the ``ssl*``
options), so a Connection made for the provider works here unchanged, and adds timeouts and a client name.

No SOP logic: each method is one Redis call (or one pipeline / script), returning what Redis answered.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any

from airflow.sdk import BaseHook

from toilless.common.errors import InvalidInput

log = logging.getLogger(__name__)

#: ``extra`` keys passed to redis-py as they are (the provider's set).
SSL_ARGUMENTS = ("ssl", "ssl_cert_reqs", "ssl_ca_certs", "ssl_keyfile", "ssl_certfile", "ssl_check_hostname")

#: Re-checks and acts on each key in one atomic step: a key that got a TTL, was touched (idle below the threshold),
#: was deleted, or does not start with one of the allowed prefixes since it was chosen is left alone.
#: ARGV: mode ("expire" | "unlink"), minimum idle seconds, TTL seconds, then the allowed prefixes.
ACT_ON_IDLE_KEYS = """
local mode, min_idle, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local done = {}
for _, key in ipairs(KEYS) do
  local allowed = false
  for i = 4, #ARGV do
    if string.sub(key, 1, #ARGV[i]) == ARGV[i] then allowed = true break end
  end
  if allowed and redis.call('PTTL', key) == -1 then
    if redis.call('OBJECT', 'IDLETIME', key) >= min_idle then
      if mode == 'unlink' then redis.call('UNLINK', key) else redis.call('EXPIRE', key, ttl) end
      done[#done + 1] = key
    end
  end
end
return done
"""


def _text(value: Any) -> str:
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else str(value)


class RedisConnectionError(InvalidInput):
    """The Connection is missing or is not a Redis Connection; the message says which and what it is."""


class RedisHook(BaseHook):
    """One Redis server (one database) from an Airflow Connection of type ``redis``.

    :param redis_conn_id: the Connection (``host``, ``port``, ``login``, ``password``; ``extra.db``, ``extra.ssl*``).
    :param client_name: the name this hook's connection shows in ``CLIENT LIST``.
    :param socket_timeout: seconds to wait for any answer (and to connect) before failing.
    """

    conn_name_attr = "redis_conn_id"
    default_conn_name = "redis_default"
    conn_type = "redis"
    hook_name = "Redis"

    def __init__(
        self, *, redis_conn_id: str = default_conn_name, client_name: str = "toilless", socket_timeout: float = 10.0
    ) -> None:
        super().__init__()
        self.redis_conn_id = redis_conn_id
        self.client_name = client_name
        self.socket_timeout = socket_timeout

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], *, dag_id: str) -> RedisHook:
        """The hook a SOP's settings name (``redis_conn_id``, ``socket_timeout_seconds``), its connection named
        ``toilless-<dag_id>`` so the SOP can tell its own connection apart from those it may end."""
        return cls(
            redis_conn_id=str(settings["redis_conn_id"]),
            client_name=f"toilless-{dag_id}",
            socket_timeout=float(settings.get("socket_timeout_seconds") or 10),
        )

    @cached_property
    def connection(self) -> Any:
        try:
            connection = self.get_connection(self.redis_conn_id)
        except Exception as err:
            # A missing Connection will not appear on a retry; anything else (the metadata DB away) may pass.
            if "NotFound" not in type(err).__name__:
                raise
            raise RedisConnectionError(f"Connection {self.redis_conn_id!r} is not defined: {err}") from err
        if (connection.conn_type or "").lower() != self.conn_type:
            raise RedisConnectionError(
                f"Connection {self.redis_conn_id!r} is of type {connection.conn_type!r}, not {self.conn_type!r}: "
                "point the SOP's redis_conn_id at a Redis Connection"
            )
        if not connection.host:
            raise RedisConnectionError(f"Connection {self.redis_conn_id!r} has no host")
        return connection

    def check_connection(self) -> None:
        """Raise :class:`RedisConnectionError` unless the Connection exists and is a Redis one (no network)."""
        self.connection  # noqa: B018 - the property validates

    @cached_property
    def client(self) -> Any:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        connection = self.connection
        extra = connection.extra_dejson or {}
        password = connection.password
        if str(password).lower() in ("none", "false", ""):
            password = None
        try:
            database = int(extra.get("db") or 0)
        except (TypeError, ValueError) as err:
            raise RedisConnectionError(f"Connection {self.redis_conn_id!r}: extra.db must be a number") from err
        return redis.Redis(
            host=connection.host,
            port=int(connection.port or 6379),
            username=connection.login or None,
            password=password,
            db=database,
            socket_timeout=self.socket_timeout,
            socket_connect_timeout=self.socket_timeout,
            client_name=self.client_name,
            # One connection for the hook's life: CLIENT ID names it, so it can never be among the ones ended.
            single_connection_client=True,
            protocol=2,
            # No silent re-sends: a script or CLIENT KILL whose answer was lost must not run again and report less
            # than it did (the SOP's budget counts what Redis reports). The task's retry decides instead.
            retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False,
            **{name: extra[name] for name in SSL_ARGUMENTS if name in extra},
        )

    def close(self) -> None:
        if "client" in self.__dict__:
            self.client.close()

    # -- reading ---------------------------------------------------------------------------------------------------
    def info(self, section: str) -> dict[str, Any]:
        return dict(self.client.info(section))

    def config_get(self, name: str) -> str | None:
        for key, value in self.client.config_get(name).items():
            if _text(key) == name:
                return _text(value)
        return None

    def dbsize(self) -> int:
        return int(self.client.dbsize())

    def own_client_id(self) -> int:
        return int(self.client.client_id())

    def scan(self, cursor: int, *, count: int, match: bytes | None = None) -> tuple[int, list[bytes]]:
        next_cursor, keys = self.client.scan(cursor=cursor, match=match, count=count)
        return int(next_cursor), list(keys)

    def key_facts(self, keys: Sequence[bytes], *, with_size: bool, with_idle: bool) -> list[tuple[Any, ...]]:
        """Per key, in one pipeline: ``(memory_usage or None, pttl, idle seconds or None)``.

        ``MEMORY USAGE``, ``PTTL`` and ``OBJECT IDLETIME`` do not touch a key: sampling changes no idle time.
        """
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            if with_size:
                pipe.memory_usage(key)
            pipe.pttl(key)
            if with_idle:
                pipe.object("idletime", key)
        answers = pipe.execute(raise_on_error=False)
        per_key = 1 + int(with_size) + int(with_idle)
        facts = []
        for index in range(len(keys)):
            chunk = answers[index * per_key : (index + 1) * per_key]
            size = chunk.pop(0) if with_size else None
            pttl = chunk.pop(0)
            idle = chunk.pop(0) if with_idle else None
            facts.append(tuple(None if isinstance(value, Exception) else value for value in (size, pttl, idle)))
        return facts

    def client_list(self, ids: Sequence[int] = ()) -> bytes:
        """``CLIENT LIST`` (or ``CLIENT LIST ID ...``) as Redis sends it: one line per client."""
        # "CLIENT", "LIST" as two words: redis-py would parse "CLIENT LIST" into dicts (and drop what it does not
        # know); the SOP parses the raw lines itself, bounded.
        if ids:
            return bytes(self.client.execute_command("CLIENT", "LIST", "ID", *[int(i) for i in ids]))
        return bytes(self.client.execute_command("CLIENT", "LIST"))

    # -- acting ----------------------------------------------------------------------------------------------------
    def act_on_idle_keys(
        self, keys: Sequence[bytes], *, mode: str, min_idle_seconds: int, ttl_seconds: int, prefixes: Sequence[bytes]
    ) -> list[bytes]:
        """Run :data:`ACT_ON_IDLE_KEYS` on ``keys``; returns the keys it expired or unlinked."""
        if mode not in ("expire", "unlink"):
            raise ValueError(f"unknown mode {mode!r}")
        if not prefixes or any(not prefix for prefix in prefixes):
            raise ValueError("act_on_idle_keys needs non-empty prefixes")
        if not keys:
            return []
        script = self.client.register_script(ACT_ON_IDLE_KEYS)
        done = script(keys=list(keys), args=[mode, int(min_idle_seconds), int(ttl_seconds), *prefixes])
        return list(done or [])

    def kill_client(self, client_id: int) -> int:
        """``CLIENT KILL ID <id> SKIPME yes``: how many connections were closed (0 or 1)."""
        return int(self.client.execute_command("CLIENT", "KILL", "ID", int(client_id), "SKIPME", "yes"))
