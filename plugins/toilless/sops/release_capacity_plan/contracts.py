"""Kubernetes' documented contracts for what this SOP writes: names and resource quantities. Pure, no Airflow.

The hand-written as-built this SOP replaces had ``512mb`` (not a quantity), a container named ``order_processor`` (not
a DNS-1123 label) and ``Replicas``/``ApiVersion`` with capitals. The OpenAPI schema catches the last two kinds of
mistake (``additionalProperties: false`` in strict mode) but not the first two: a quantity and a container name are
plain strings there. So names and quantities are checked here, against the contracts the API server enforces:

- names: https://kubernetes.io/docs/concepts/overview/working-with-objects/names/ (DNS-1123 label: at most 63
  characters, lower-case alphanumerics and ``-``, starting and ending alphanumeric; DNS-1123 subdomain: at most 253,
  labels joined by ``.``). Namespaces and container names are labels; Deployment names are subdomains.
- quantities: ``k8s.io/apimachinery/pkg/api/resource`` (``<signedNumber><suffix>``, suffix one of the binary SI
  ``Ki Mi Gi Ti Pi Ei``, the decimal SI ``m "" k M G T P E``, or an exponent ``e<n>``/``E<n>``; the parser also reads
  ``n`` and ``u``, which metrics-server writes for CPU usage: ``12345678n``).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

from toilless.common.errors import InvalidInput

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
#: The quantity grammar of k8s.io/apimachinery (resource.ParseQuantity).
_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?\Z"
)
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("0.001"),
    "": Decimal(1),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
}
_DECIMAL |= {"T": Decimal(10**12), "P": Decimal(10**15), "E": Decimal(10**18)}
#: Common misspellings of units, for the error's hint: what was probably meant.
_UNIT_HINTS = {
    "kb": "Ki",
    "kib": "Ki",
    "mb": "Mi",
    "mib": "Mi",
    "gb": "Gi",
    "gib": "Gi",
    "tb": "Ti",
    "tib": "Ti",
    "b": "",
}
#: Longest quantity text accepted (the API's own limit is generous; ours keeps error messages short).
_MAX_QUANTITY_CHARS = 64
#: Largest memory / CPU a plan may hold: far above any node (1 PiB, 1 million cores), far below overflow.
MAX_MEMORY_BYTES = 2**50
MAX_CPU_MILLI = 10**9


class ContractError(InvalidInput):
    """A name or quantity Kubernetes would refuse (or misread); the message says which rule and what to write."""


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_label(value: object, what: str) -> str:
    """``value`` if it is a DNS-1123 label (namespace, container name), else ContractError with a suggestion."""
    if not isinstance(value, str) or not value:
        raise ContractError(f"{what} must be a non-empty string, got {_shown(value)}")
    if len(value) > DNS1123_LABEL_MAX or not DNS1123_LABEL.match(value):
        suggestion = re.sub(r"[^a-z0-9-]+", "-", value.lower()).strip("-")[:DNS1123_LABEL_MAX].strip("-")
        hint = f" (e.g. {suggestion!r})" if suggestion and DNS1123_LABEL.match(suggestion) else ""
        raise ContractError(
            f"{what} {_shown(value)} is not a valid Kubernetes name: a DNS-1123 label is at most 63 characters of "
            f"lower-case letters, digits and '-', starting and ending with a letter or digit{hint}"
        )
    return value


def check_subdomain(value: object, what: str) -> str:
    """``value`` if it is a DNS-1123 subdomain (Deployment names), else ContractError."""
    if not isinstance(value, str) or not value:
        raise ContractError(f"{what} must be a non-empty string, got {_shown(value)}")
    if len(value) > DNS1123_SUBDOMAIN_MAX or not all(
        len(part) <= DNS1123_LABEL_MAX and DNS1123_LABEL.match(part) for part in value.split(".")
    ):
        raise ContractError(
            f"{what} {_shown(value)} is not a valid Kubernetes name: a DNS-1123 subdomain is at most 253 characters "
            "of lower-case letters, digits, '-' and '.', each dot-separated part starting and ending alphanumeric"
        )
    return value


def parse_quantity(value: object, what: str) -> Decimal:
    """The number a Kubernetes quantity stands for (``"1Gi"`` -> 1073741824, ``"250m"`` -> 0.25).

    Raises ContractError for anything resource.ParseQuantity refuses, with the likely intended spelling.
    """
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ContractError(f"{what} must be a Kubernetes quantity string such as '512Mi', got {_shown(value)}")
    text = str(value)
    match = _QUANTITY.match(text) if len(text) <= _MAX_QUANTITY_CHARS else None
    if match is None:
        number = re.match(r"^\s*([0-9.]+)\s*([A-Za-z]+)\s*\Z", text)
        hint = ""
        if number and number.group(2).lower() in _UNIT_HINTS:
            hint = f"; did you mean {number.group(1)}{_UNIT_HINTS[number.group(2).lower()]!s}?"
        raise ContractError(
            f"{what} {_shown(value)} is not a Kubernetes quantity: a number followed by one of Ki, Mi, Gi, Ti, Pi, "
            f"Ei (powers of 1024), k, M, G, T, P, E (powers of 1000), m (1/1000) or nothing{hint}"
        )
    try:
        number = Decimal(match.group("number"))
    except InvalidOperation as err:  # pragma: no cover - the pattern only lets decimals through
        raise ContractError(f"{what} {_shown(value)} is not a number") from err
    suffix = match.group("suffix") or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    exponent = int(suffix[1:])
    if abs(exponent) > 30:
        raise ContractError(f"{what} {_shown(value)}: exponent out of range")
    return number.scaleb(exponent)


def memory_bytes(value: object, what: str) -> int:
    """A memory quantity in bytes. Refuses negatives, fractions of a byte (``"512m"`` is 0.512 bytes, a classic slip
    for ``512Mi``) and sizes beyond :data:`MAX_MEMORY_BYTES`."""
    amount = parse_quantity(value, what)
    if amount < 0:
        raise ContractError(f"{what} {_shown(value)} must not be negative")
    if amount != amount.to_integral_value():
        raise ContractError(
            f"{what} {_shown(value)} is a fraction of a byte ('m' means 1/1000 for memory); did you mean "
            f"{str(value)[:-1]}Mi?"
        )
    if amount > MAX_MEMORY_BYTES:
        raise ContractError(f"{what} {_shown(value)} is larger than any node ({format_memory(MAX_MEMORY_BYTES)})")
    return int(amount)


def cpu_millicores(value: object, what: str) -> int:
    """A CPU quantity in millicores (``"1.5"`` -> 1500, ``"250m"`` -> 250). Kubernetes' CPU precision is 1m."""
    amount = parse_quantity(value, what) * 1000
    if amount < 0:
        raise ContractError(f"{what} {_shown(value)} must not be negative")
    if amount > MAX_CPU_MILLI:
        raise ContractError(f"{what} {_shown(value)} is more CPU than any node")
    return math.ceil(amount)


def format_memory(amount: int) -> str:
    """Bytes as the largest binary unit that holds them exactly: 1073741824 -> ``"1Gi"``, 1140850688 -> ``"1088Mi"``."""
    if amount < 0:
        raise ContractError(f"memory {amount} must not be negative")
    for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        unit = _BINARY[suffix]
        if amount and amount % unit == 0:
            return f"{amount // unit}{suffix}"
    return str(amount)


def format_cpu(millicores: int) -> str:
    """Millicores as a quantity: 2000 -> ``"2"``, 250 -> ``"250m"``."""
    if millicores < 0:
        raise ContractError(f"CPU {millicores}m must not be negative")
    return str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"


def round_up(amount: float | int | Decimal, step: int) -> int:
    """``amount`` rounded up to a whole multiple of ``step`` (a quantity step: 64Mi, 50m)."""
    if step <= 0:
        raise ContractError(f"rounding step {step} must be positive")
    return math.ceil(Decimal(str(amount)) / step) * step
