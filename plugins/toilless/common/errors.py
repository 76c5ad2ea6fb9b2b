"""Errors every SOP shares. Pure, no Airflow import.

:class:`InvalidInput` is the one signal for "the configuration or a run's Params are wrong": retrying cannot help.
Pure code raises it (or a subclass: ``toilless.common.config.ConfigError``, ``toilless.common.policies.PolicyError``, an SOP's
settings error); ``toilless.common.dag_defaults.task`` turns it into Airflow's no-retry failure for every task of every DAG.
"""

from __future__ import annotations


class InvalidInput(ValueError):
    """Configuration (YAML, a Variable) or a run's Params are invalid; the message says which value and why.

    A task that raises it fails at once, without retries: the same input fails the same way every time.
    """


# -- permanent vs transient errors from AWS and Kubernetes ----------------------------------------------------------

#: AWS error codes that a later try may pass: throttling, timeouts, a resource busy or in a passing state. Checked
#: before anything else, because AWS returns several of them with a 400 status.
TRANSIENT_AWS_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "SlowDown",
        "BandwidthLimitExceeded",
        "PriorRequestNotComplete",
        "RequestTimeout",
        "RequestTimeoutException",
        "OperationAborted",
        "ConcurrentModification",
        "ConcurrentModificationException",
        "EC2ThrottledException",
        "IDPCommunicationError",
        "ExpiredToken",
        "ExpiredTokenException",
        "RequestExpired",
        "InvalidDBInstanceState",
        "InternalFailure",
        "InternalError",
        "ServiceUnavailable",
    }
)
#: botocore exceptions raised before any request is sent (bad region or parameters, no credentials): every try
#: fails the same way. By class name, so this module needs no botocore import.
PERMANENT_BOTOCORE_ERRORS = frozenset(
    {
        "InvalidRegionError",
        "NoRegionError",
        "ParamValidationError",
        "NoCredentialsError",
        "PartialCredentialsError",
        "UnknownServiceError",
        "UnknownParameterError",
    }
)
#: HTTP statuses that a later try may pass (Kubernetes and AWS): timeout, conflict (optimistic locking), throttling.
TRANSIENT_HTTP_STATUSES = frozenset({408, 409, 425, 429})
#: How deep a chain of ``raise ... from err`` is followed looking for the API's own error.
_MAX_CHAIN = 8


def is_permanent(error: BaseException) -> bool:
    """True if ``error`` (or what it was raised ``from``) is an AWS or Kubernetes error a retry cannot fix.

    Only explicit causes are followed (``raise X from err``), not an error merely being handled when another was
    raised: that one may be transient on its own.

    - botocore ``ClientError``: throttling and the other :data:`TRANSIENT_AWS_CODES` are transient; any other
      client (4xx) error is permanent (``ValidationException``, ``InvalidParameterValue``,
      ``InvalidParameterCombination``, ``StorageQuotaExceeded`` (needs a quota raise), ``AccessDenied*``, not found);
      5xx is transient.
    - botocore errors raised before sending (:data:`PERMANENT_BOTOCORE_ERRORS`, e.g. ``InvalidRegionError``).
    - Kubernetes ``ApiException``: 4xx permanent (400 bad request, 401/403 not allowed, 404 not found, 422 invalid)
      except 408/409/425/429; 5xx and status 0 (no answer) transient.
    - Anything else (network errors, our own code): not classified here, left to the task's retries.
    """
    current: BaseException | None = error
    for _ in range(_MAX_CHAIN):
        if current is None:
            return False
        verdict = _classify(current)
        if verdict is not None:
            return verdict
        current = current.__cause__
    return False


def _classify(error: BaseException) -> bool | None:
    names = {cls.__name__ for cls in type(error).__mro__}
    if names & PERMANENT_BOTOCORE_ERRORS:
        return True
    response = getattr(error, "response", None)
    if "ClientError" in names and isinstance(response, dict):
        code = str((response.get("Error") or {}).get("Code") or "")
        status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        if code in TRANSIENT_AWS_CODES or "Throttl" in code:
            return False
        if isinstance(status, int) and status >= 500:
            return False
        if isinstance(status, int) and status in TRANSIENT_HTTP_STATUSES:
            return False
        # A client error: by status when AWS gives one, else by its code (an unknown code is not guessed).
        if isinstance(status, int) and 400 <= status < 500:
            return True
        return bool(code) and (code.startswith(("AccessDenied", "Invalid", "Validation")) or code.endswith("NotFound"))
    if "ApiException" in names and isinstance(getattr(error, "status", None), int):
        status = int(error.status)  # type: ignore[attr-defined]
        return 400 <= status < 500 and status not in TRANSIENT_HTTP_STATUSES
    return None


def describe_permanent(error: BaseException) -> str:
    """A short name for the API error behind ``error``: ``"AWS AccessDenied (403)"``, ``"Kubernetes 404"``."""
    current: BaseException | None = error
    for _ in range(_MAX_CHAIN):
        if current is None:
            break
        response = getattr(current, "response", None)
        if isinstance(response, dict) and "Error" in response:
            status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
            return f"AWS {(response.get('Error') or {}).get('Code')} ({status})"
        if type(current).__name__ == "ApiException":
            return f"Kubernetes {getattr(current, 'status', '?')} {getattr(current, 'reason', '')}".rstrip()
        if {cls.__name__ for cls in type(current).__mro__} & PERMANENT_BOTOCORE_ERRORS:
            return f"AWS {type(current).__name__}"
        current = current.__cause__
    return type(error).__name__
