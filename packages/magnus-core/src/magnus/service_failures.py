"""A service that cannot be used, said in one line: which service, what failed, and the fix.

Catalogs, run log stores and trackers reach buckets, databases and servers through their own
libraries (boto3, s3fs, fsspec, requests), which raise their own exceptions: a missing bucket, an
endpoint that does not answer, no credentials. Those are not bugs of magnus, and "internal error"
is kept for bugs. :func:`using` turns the failures of reaching or using a service that it
recognises (by the exception's class names, so that no library is imported here) into a
:class:`~magnus.errors.ServiceError`; anything else goes on as it was raised.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Iterator, Optional, Set

from magnus.errors import MagnusError, ServiceError

if TYPE_CHECKING:
    from magnus.service import BaseService

_NO_CREDENTIALS = {"NoCredentialsError", "PartialCredentialsError", "NoAuthTokenError", "CredentialRetrievalError"}
_UNREACHABLE = {
    "EndpointConnectionError",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "NewConnectionError",
    "MaxRetryError",
    "ConnectionError",  # the builtin's and requests's
    "ClientConnectorError",  # aiohttp's, under s3fs
    "ServerTimeoutError",
    "gaierror",
    "TimeoutError",
}
_REFUSED_CREDENTIALS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "ExpiredToken", "Forbidden"}
# Where a service's summary says it keeps or sends its data, in order of preference.
_LOCATION_FIELDS = ("location", "catalog_location", "log_folder", "server_url", "connection_string")


@contextlib.contextmanager
def using(service: "BaseService") -> Iterator[None]:
    """Within the block, a recognised failure of ``service`` is a ServiceError naming it by its kind.

    Raises:
        ServiceError: ``catalog 'fsspec' at s3://b/c: the bucket does not exist: create it, or
            change the location``.
    """
    try:
        yield
    except MagnusError:
        raise
    except Exception as exc:
        why = unusable(exc)
        if why is None:
            raise
        kind = service.service_type or "service"
        raise ServiceError(f"{kind} '{service.service_name}'{_at(service)}: {why}") from exc


def unusable(exc: BaseException) -> Optional[str]:
    """What ``exc`` says of a service that could not be used, with the fix; None: not such a failure."""
    names = _class_names(exc)
    said = _said(exc)
    code = _error_code(exc)
    if names & _NO_CREDENTIALS:
        return (
            f"no credentials were found ({said}): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "(or AWS_PROFILE), or give them in the service's storage_options"
        )
    if code == "NoSuchBucket" or "bucket does not exist" in said.lower():
        return "the bucket does not exist: create it, or change the location"
    if code in _REFUSED_CREDENTIALS or "PermissionError" in names:
        return f"access was refused ({said}): check the credentials and what they may do"
    if names & _UNREACHABLE or "ConnectionRefusedError" in names:
        return f"it cannot be reached ({said}): check the address, and that the service is running"
    return None


def _class_names(exc: BaseException) -> Set[str]:
    """The names of ``exc``'s classes, and of the exceptions that caused it (a library's wrapper)."""
    names: Set[str] = set()
    seen = 0
    current: Optional[BaseException] = exc
    while current is not None and seen < 8:
        names.update(cls.__name__ for cls in type(current).__mro__)
        current, seen = current.__cause__ or current.__context__, seen + 1
    return names


def _error_code(exc: BaseException) -> str:
    """botocore's error code (``NoSuchBucket``) of a ``ClientError``; ``''`` for other exceptions."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _said(exc: BaseException) -> str:
    """The exception's message on one line, short (libraries put whole URLs and reprs in theirs)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _at(service: "BaseService") -> str:
    """`` at <where the service is>``, as the run log records it (a password shown as ``***``)."""
    summary = service.get_summary()
    for field in _LOCATION_FIELDS:
        if summary.get(field):
            return f" at {summary[field]}"
    return ""


__all__ = ["unusable", "using"]
