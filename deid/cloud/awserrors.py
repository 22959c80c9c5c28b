"""AWS errors as deid errors: transient (throttling, a busy resource, a network failure, AWS's own 5xx)
or terminal (a missing permission, an unknown resource, a quota), each naming the resource and the fix.

Messages carry AWS's error code and message, the operation and the resource; deid never sends a secret in a
request (no passwords: a clone keeps its source's credentials), so AWS's message cannot echo one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from deid.errors import ConfigError, DeidError, TerminalError, TransientError

# Codes AWS documents as "slow down" or "try again" (botocore's own retry list, plus RDS/Route 53 ones).
TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "SlowDown",
        "PriorRequestNotComplete",  # Route 53: a change to the same record is still being applied
        "RequestTimeout",
        "RequestTimeoutException",
        "ServiceUnavailable",
        "InternalFailure",
        "InternalError",
        "InvalidDBClusterStateFault",  # the cluster is busy (backing up, modifying): it passes
        "InvalidDBInstanceState",
        "InvalidDBInstanceStateFault",
    }
)

_DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "NotAuthorized"})
_CREDENTIALS = frozenset(
    {"InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch", "ExpiredToken"}
)
_MISSING = (
    "NotFound",
    "NotFoundFault",
    "NoSuchHostedZone",
)
_EXISTS = ("AlreadyExists", "AlreadyExistsFault")


class CloudError(TerminalError):
    """AWS refused a request for a reason a person must fix. `code` is AWS's error code."""

    def __init__(self, message: str, code: str = ""):
        super().__init__(message)
        self.code = code


class CloudUnavailable(TransientError):
    """AWS was slow, busy or unreachable, or a wait ran out of time: retrying may pass."""

    def __init__(self, message: str, code: str = ""):
        super().__init__(message)
        self.code = code


def _fix(code: str, operation: str, service: str) -> str:
    if code in _DENIED:
        return (
            f"grant the role deid runs as the IAM action {service}:{operation} on it "
            "(docs/cloners-aws.md lists every action deid calls)"
        )
    if code in _CREDENTIALS:
        return "give deid valid AWS credentials (its role, or the environment of the worker)"
    if code.endswith(_MISSING):
        return "check the identifier in deid.yaml and the region the client uses"
    if code.endswith(_EXISTS):
        return "delete it first, or let deid's retention remove it if it is one of deid's clones"
    if "Quota" in code:
        return (
            "the account's quota is reached: delete old clones (a lower retention in deid.yaml) or raise the "
            "quota in AWS Service Quotas"
        )
    if code in TRANSIENT_CODES:
        return "retry later (the task's retries do)"
    return "see AWS's message above"


def translate(error: BaseException, doing: str, resource: str) -> DeidError:
    """The deid error for a botocore error raised while `doing` (a verb phrase) on `resource`."""
    from botocore.exceptions import (
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
        ReadTimeoutError,
    )

    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code = str(details.get("Code", "Unknown"))
        said = str(details.get("Message", "")).strip()
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        operation = error.operation_name or "the operation"
        service = _service_of(error)
        text = f"{doing} {resource}: AWS said {code}" + (f" ({said})" if said else "")
        text += f" to {operation}. Fix: {_fix(code, operation, service)}."
        if code in TRANSIENT_CODES or status >= 500:
            return CloudUnavailable(text, code)
        if code in _CREDENTIALS:
            return ConfigError(text)
        return CloudError(text, code)
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return ConfigError(
            f"{doing} {resource}: boto3 found no complete AWS credentials. Fix: run deid with an IAM role "
            "(instance profile, IRSA, ECS task role) or the AWS_* environment variables of one."
        )
    if isinstance(error, NoRegionError):
        return ConfigError(f"{doing} {resource}: no AWS region is set. Fix: set AWS_REGION or the region.")
    unreachable = EndpointConnectionError | ConnectTimeoutError | ReadTimeoutError | ConnectionClosedError
    if isinstance(error, unreachable):
        return CloudUnavailable(
            f"{doing} {resource}: AWS could not be reached ({type(error).__name__}). Fix: retry later, or "
            "check the worker's network path to the AWS endpoint."
        )
    return CloudError(f"{doing} {resource}: {type(error).__name__}: {error}")


@contextmanager
def aws(doing: str, resource: str) -> Iterator[None]:
    """Every botocore error inside becomes the deid error `translate` gives."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (ClientError, BotoCoreError) as error:
        raise translate(error, doing, resource) from error


def _service_of(error: BaseException) -> str:
    # botocore's error classes for a client carry no service name; the operation names are unique enough
    # across the two services deid calls
    operation = getattr(error, "operation_name", "") or ""
    route53 = {"ChangeResourceRecordSets", "ListResourceRecordSets", "GetChange", "GetHostedZone"}
    return "route53" if operation in route53 else "rds"
