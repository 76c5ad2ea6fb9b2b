"""What the SOP sends to DNS servers, the team's tool and Route 53, checked against the contracts (no Airflow import).

- DNS names: RFC 1035 section 2.3.4 (a label 1-63 octets, a name at most 255 octets on the wire, i.e. 253 characters
  written without the final dot) and the preferred syntax of 2.3.1 relaxed as RFC 1123 2.1 allows (a label may start
  with a digit); ``_`` is accepted inside labels because service names (``_dns._udp``) use it.
- Server addresses: an IPv4/IPv6 address, or a host name by the rule above.
- The provider command: an argv list of non-empty strings whose program exists and is executable (never a shell).

Every failure is a :class:`DnsInputError` (an ``InvalidInput``: the run fails at once, without retries, before
anything is changed) whose message names the setting and what is wrong.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
from collections.abc import Sequence
from typing import Any

from toilless.common.errors import InvalidInput

MAX_NAME_CHARS = 253
MAX_LABEL_CHARS = 63
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)\Z")
#: Record types the probe compares: addresses, names and text, whose answers have one canonical text form.
RECORD_TYPES = ("A", "AAAA", "CNAME", "NS", "TXT", "MX")
#: A server name as the tool and the report use it (``ns1``, ``dns-a.eu``): no spaces, no shell metacharacters.
_SERVER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}\Z")


class DnsInputError(InvalidInput):
    """A DNS name, server address, port or command that breaks its contract; the message says which and why."""


def check_dns_name(name: Any, *, what: str = "DNS name") -> str:
    """``name`` without a trailing dot, lower-cased, if it is a valid DNS name; else :class:`DnsInputError`."""
    if not isinstance(name, str) or not name:
        raise DnsInputError(f"{what} {name!r}: must be a non-empty string")
    if not name.isascii():
        raise DnsInputError(f"{what} {name[:80]!r}: must be ASCII (IDNs in their xn-- form)")
    text = name[:-1] if name.endswith(".") else name
    if not text:
        raise DnsInputError(f"{what} {name!r}: the root alone is not a name to query")
    if len(text) > MAX_NAME_CHARS:
        raise DnsInputError(f"{what} {text[:40]!r}...: {len(text)} characters, RFC 1035 allows {MAX_NAME_CHARS}")
    for label in text.split("."):
        if not label:
            raise DnsInputError(f"{what} {text!r}: empty label (two dots in a row)")
        if len(label) > MAX_LABEL_CHARS:
            raise DnsInputError(
                f"{what} {text[:80]!r}: label {label[:20]!r}... has {len(label)} characters, at most {MAX_LABEL_CHARS}"
            )
        if not _LABEL.match(label):
            raise DnsInputError(
                f"{what} {text[:80]!r}: label {label!r} may hold only letters, digits, '-' and '_' and must not "
                "start or end with '-'"
            )
    return text.lower()


def check_server_address(address: Any, *, what: str = "server address") -> str:
    """An IP address (normalised) or a valid host name; else :class:`DnsInputError`."""
    if not isinstance(address, str) or not address.strip():
        raise DnsInputError(f"{what} {address!r}: must be an IP address or a host name")
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        pass
    # A dotted-quad that is not an address (999.1.1.1) would pass as a host name of digits: refuse it as an address.
    if re.fullmatch(r"[0-9.]+", address):
        raise DnsInputError(f"{what} {address!r}: not a valid IPv4 address")
    try:
        return check_dns_name(address, what=what)
    except DnsInputError as err:
        raise DnsInputError(f"{err}; {what} must be an IP address or a host name") from None


def check_port(port: Any, *, what: str = "port") -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise DnsInputError(f"{what} {port!r}: must be an integer 1-65535")
    return port


def check_server_name(name: Any) -> str:
    if not isinstance(name, str) or not _SERVER_NAME.match(name):
        raise DnsInputError(
            f"server name {name!r}: 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


def check_record_type(kind: Any) -> str:
    text = str(kind).upper()
    if text not in RECORD_TYPES:
        raise DnsInputError(f"record type {kind!r}: one of {', '.join(RECORD_TYPES)}")
    return text


def check_expected_values(kind: str, values: Any, *, what: str) -> tuple[str, ...]:
    """The expected answers of one query in canonical text form (addresses normalised, names without the dot)."""
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list | tuple) or not values:
        raise DnsInputError(f"{what}: expected answers must be a non-empty list")
    canonical = []
    for value in values:
        if kind in ("A", "AAAA"):
            try:
                address = ipaddress.ip_address(str(value))
            except ValueError:
                raise DnsInputError(f"{what}: {value!r} is not an IP address") from None
            if (address.version == 4) != (kind == "A"):
                raise DnsInputError(f"{what}: {value!r} is not an {kind} address")
            canonical.append(str(address))
        elif kind in ("CNAME", "NS"):
            canonical.append(check_dns_name(str(value), what=what))
        else:
            canonical.append(str(value))
    return tuple(sorted(canonical))


def check_command(command: Any, *, what: str = "provider command") -> list[str]:
    """An argv list whose program exists and is executable (found on PATH if not a path)."""
    if isinstance(command, str):
        command = [command]
    if not isinstance(command, list | tuple) or not command or not all(isinstance(p, str) and p for p in command):
        raise DnsInputError(f"{what} {command!r}: must be a non-empty list of strings (argv, never a shell line)")
    if any("\x00" in part for part in command):
        raise DnsInputError(f"{what}: an argument contains a NUL byte")
    program = command[0]
    found = program if os.sep in program else shutil.which(program)
    if not found or not os.path.isfile(found) or not os.access(found, os.X_OK):
        raise DnsInputError(f"{what}: {program!r} not found or not executable")
    return [found, *command[1:]]


def check_servers(servers: Any) -> dict[str, dict[str, Any]]:
    """The ``servers`` setting: exactly two servers, each with a valid name, address and port."""
    if not isinstance(servers, dict) or len(servers) != 2:
        raise DnsInputError(f"servers: exactly two servers (the active one and its standby), got {servers!r}"[:300])
    checked = {}
    for name, server in servers.items():
        check_server_name(name)
        if not isinstance(server, dict):
            raise DnsInputError(f"servers.{name}: must be a mapping with address and port")
        checked[name] = {
            **server,
            "address": check_server_address(server.get("address"), what=f"servers.{name}.address"),
            "port": check_port(server.get("port", 53), what=f"servers.{name}.port"),
        }
    addresses = [(s["address"], s["port"]) for s in checked.values()]
    if addresses[0] == addresses[1]:
        raise DnsInputError("servers: both servers have the same address and port")
    return checked


def check_queries(queries: Any) -> list[dict[str, Any]]:
    """The names to query: ``[{name, type, expect: [...]}, ...]`` (1-20 of them)."""
    if not isinstance(queries, list) or not 1 <= len(queries) <= 20:
        raise DnsInputError("queries: a list of 1-20 {name, type, expect} entries")
    checked = []
    for index, query in enumerate(queries):
        if not isinstance(query, dict):
            raise DnsInputError(f"queries[{index}]: must be a mapping")
        name = check_dns_name(query.get("name"), what=f"queries[{index}].name")
        kind = check_record_type(query.get("type", "A"))
        expect = check_expected_values(kind, query.get("expect"), what=f"queries[{index}] ({name} {kind})")
        checked.append({"name": name, "type": kind, "expect": list(expect)})
    return checked


def bounded(values: Sequence[Any], limit: int) -> list[Any]:
    return list(values[:limit])
