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
import re
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional, Set

from magnus.credentials import hidden_in, url_credentials
from magnus.errors import MagnusError, ServiceError

if TYPE_CHECKING:
    from magnus.redaction import Redactor
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
# ``scheme://user:password@``: the password of a URL a library quotes in its message.
_PASSWORD_IN_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@")
# Where a service's summary says it keeps or sends its data, in order of preference.
_LOCATION_FIELDS = ("location", "catalog_location", "log_folder", "server_url", "connection_string")


@contextlib.contextmanager
def using(service: "BaseService", redactor: Optional["Redactor"] = None) -> Iterator[None]:
    """Within the block, a recognised failure of ``service`` is a ServiceError naming it by its kind.

    What the library said is quoted with the credentials of the service's configuration, any
    ``user:password@`` of a URL and the run's secrets (``redactor``) masked, then shortened.

    Raises:
        ServiceError: ``catalog 'fsspec' at s3://b/c: the bucket does not exist: create it, or
            change the location``.
    """
    try:
        yield
    except MagnusError:
        raise
    except Exception as exc:
        why = unusable(exc, lambda text: _masked(text, service, redactor))
        if why is None:
            raise
        kind = service.service_type or "service"
        raise ServiceError(f"{kind} '{service.service_name}'{_at(service)}: {why}") from exc


def unusable(exc: BaseException, masked: Callable[[str], str] = lambda text: text) -> Optional[str]:
    """What ``exc`` says of a service that could not be used, with the fix; None: not such a failure.

    ``masked`` hides what must not be shown in the library's message (before it is shortened).
    """
    names = _class_names(exc)
    said = _said(exc, masked)
    code = _error_code(exc)
    if names & _NO_CREDENTIALS:
        return (
            f"no credentials were found ({said}): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "(or AWS_PROFILE), or give them in the service's storage_options"
        )
    if code == "NoSuchBucket" or "bucket does not exist" in said.lower():
        return "the bucket does not exist: create it, or change the location"
    if code in _REFUSED_CREDENTIALS:
        return f"access was refused ({said}): check the credentials and what they may do"
    if names & _UNREACHABLE or "ConnectionRefusedError" in names:
        return f"it cannot be reached ({said}): check the address, and that the service is running"
    return None


def _class_names(exc: BaseException) -> Set[str]:
    """The names of ``exc``'s classes, and of the exceptions that caused it (a library's wrapper); a
    context the raiser hid (``raise ... from None``) is not followed."""
    names: Set[str] = set()
    seen = 0
    current: Optional[BaseException] = exc
    while current is not None and seen < 8:
        names.update(cls.__name__ for cls in type(current).__mro__)
        hidden = current.__suppress_context__
        current, seen = current.__cause__ or (None if hidden else current.__context__), seen + 1
    return names


def _error_code(exc: BaseException) -> str:
    """botocore's error code (``NoSuchBucket``) of a ``ClientError``; ``''`` for other exceptions."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _said(exc: BaseException, masked: Callable[[str], str]) -> str:
    """The exception's message on one line, masked, then short (libraries put whole URLs in theirs)."""
    text = masked(" ".join(str(exc).split()) or type(exc).__name__)
    return text if len(text) <= 200 else text[:197] + "..."


def _masked(text: str, service: "BaseService", redactor: Optional["Redactor"]) -> str:
    """``text`` without the credentials of ``service``'s configuration, a URL's password or a secret."""
    configured = [found for value in _texts(service.model_dump()) for found in url_credentials(value)]
    text = _PASSWORD_IN_URL.sub(r"\1***@", hidden_in(text, configured))
    return redactor.redact(text) if redactor else text


def _texts(data: Any) -> Iterator[str]:
    """Every text in ``data`` (a configuration: mappings and lists of texts and numbers)."""
    if isinstance(data, str):
        yield data
    elif isinstance(data, dict):
        for value in data.values():
            yield from _texts(value)
    elif isinstance(data, (list, tuple)):
        for value in data:
            yield from _texts(value)


def _at(service: "BaseService") -> str:
    """`` at <where the service is>``, as the run log records it (a password shown as ``***``)."""
    summary = service.get_summary()
    for field in _LOCATION_FIELDS:
        if summary.get(field):
            return f" at {summary[field]}"
    return ""


__all__ = ["unusable", "using"]
