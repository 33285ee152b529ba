"""Credentials written into a configuration, kept out of what a run shows and records.

A service's configuration may hold credentials of its own, not read through the secrets backend:
a password in a database URL (``postgresql://app:pw@host/db``, ``...?password=pw``), an MLflow
tracking URI, the ``storage_options`` of an object store (``key``, ``headers.Authorization``,
``auth: [user, password]``). Every summary (the run log's ``run_config``), location and message
of a plugin that shows such a configuration goes through the functions here:

- :func:`redacted_url`: a URL is *parsed*, never matched with a pattern: its password and the
  values of credential-like query parameters (``password``, ``passwd``, ``pwd``, ``sslpassword``,
  ``token``, ``api_key``, ``sig``, ...) become ``***``. A URL that cannot be read without doubt
  (an unencoded ``@``, ``/``, ``?`` or ``#`` in its user or password makes parsers disagree on where
  the password ends) is never shown at all: :func:`url_problem` says why, so that the plugin
  refuses it naming its configuration field, without its value;
- :func:`redacted_options`: everything under a credential-like key, at any depth and of any type
  (a text, a list, a mapping), becomes ``***``; URLs elsewhere are shown by :func:`redacted_url`.

``${name}`` placeholders are shown as they are: they name a secret of the secrets backend, they
are not one (its value is masked by :mod:`magnus.redaction` wherever it appears).
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Optional, Tuple
from urllib.parse import unquote, unquote_plus

from magnus.redaction import MASK, MINIMUM_LENGTH

PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")
# Parts of the names of options and query parameters whose values are credentials.
_CREDENTIAL_WORDS = (
    "key",
    "secret",
    "token",
    "passw",
    "pwd",
    "credential",
    "auth",
    "sas",
    "connection_string",
    "cookie",
    "signature",
    "private",
)
_CREDENTIAL_NAMES = frozenset({"sig"})  # Azure's shared access signature
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_SCHEME_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
UNPARSEABLE = "<unparseable URL, not shown>"


def is_placeholder(value: Any) -> bool:
    """Whether ``value`` is one ``${name}`` placeholder (it names a secret, it is not one)."""
    return isinstance(value, str) and PLACEHOLDER.fullmatch(value.strip()) is not None


def is_credential_name(name: Any) -> bool:
    """Whether an option or query parameter called ``name`` holds a credential (``aws_secret_access_key``)."""
    lowered = str(name).lower()
    return lowered in _CREDENTIAL_NAMES or any(word in lowered for word in _CREDENTIAL_WORDS)


# ---- URLs -------------------------------------------------------------------------------------------
class _URL:
    """A URL cut into the parts :func:`redacted_url` shows or hides, each kept as written."""

    def __init__(self, text: str) -> None:
        """Raises: ValueError: why ``text`` cannot be cut without doubt (never quoting it)."""
        self.head, self.rest = text, ""  # a path or a word (``databricks``): shown whole
        self.userinfo: Optional[str] = None
        scheme, separator, after = text.partition("://")
        if separator and _SCHEME.fullmatch(scheme):
            self.head = scheme + separator
            self.userinfo, self.rest = _split_authority(after)
        elif _SCHEME_PREFIX.match(text):  # file:/folder?..., no authority
            self.head, self.rest = "", text
        before_fragment, self.has_fragment, self.fragment = self.rest.partition("#")
        self.path, self.has_query, self.query = before_fragment.partition("?")

    def password(self) -> str:
        return self.userinfo.partition(":")[2] if self.userinfo is not None else ""

    def shown(self) -> str:
        text = self.head
        if self.userinfo is not None:
            user, colon, password = self.userinfo.partition(":")
            text += f"{user}{colon}{MASK if password and not is_placeholder(password) else password}@"
        text += self.path
        if self.has_query:
            text += "?" + _shown_pairs(self.query)
        if self.has_fragment:
            text += "#" + _shown_pairs(self.fragment)
        return text

    def credentials(self) -> List[str]:
        """The literal credentials :meth:`shown` hides, as written and decoded."""
        password = self.password()
        values = [*_credential_values(self.query), *_credential_values(self.fragment)]
        forms = [password, unquote(password), *values, *(unquote_plus(value) for value in values)]
        return [form for form in forms if form and not is_placeholder(form)]


def _split_authority(after: str) -> Tuple[Optional[str], str]:
    """The user info (None without one) and the rest (host, port, path, query, fragment) after ``scheme://``.

    Raises: ValueError: parsers would disagree on where the user info ends.
    """
    end = min([index for index in (after.find(mark) for mark in "/?#") if index >= 0], default=len(after))
    authority = after[:end]
    if "@" in authority:
        userinfo, _, _ = authority.rpartition("@")
        if "@" in userinfo:
            # RFC 3986 ends the user info at the last '@', SQLAlchemy at the first.
            raise ValueError("more than one '@' before the host: write an '@' in the user or password as %40")
        return userinfo, after[len(userinfo) + 1 :]
    first_at = after.find("@")
    if authority and first_at > end and ":" in after[:first_at]:
        # SQLAlchemy reads a password running up to that '@', across the '/', '?' or '#'.
        raise ValueError(
            "an '@' after the host: write '/', '?', '#' and '@' in the user or password as %2F, %3F, %23, %40"
        )
    return None, after


def _pairs(text: str) -> List[Tuple[str, str, str]]:
    return [part.partition("=") for part in text.split("&")]


def _credential_values(text: str) -> List[str]:
    return [value for name, equals, value in _pairs(text) if equals and is_credential_name(unquote_plus(name))]


def _shown_pairs(text: str) -> str:
    shown = []
    for name, equals, value in _pairs(text):
        if equals and value and is_credential_name(unquote_plus(name)) and not is_placeholder(value):
            value = MASK
        shown.append(name + equals + value)
    return "&".join(shown)


def url_problem(text: str) -> str:
    """Why ``text`` cannot be shown as a URL with its credentials hidden, or ``''`` (the value is never quoted).

    Callers refuse such a URL naming their configuration field, in the words of :func:`unparseable`.
    """
    if is_placeholder(text):
        return ""
    try:
        _URL(text)
    except ValueError as problem:
        return str(problem)
    return ""


def unparseable(problem: str) -> str:
    """What a refusal says of a URL :func:`url_problem` found fault with (after the field it names)."""
    return f"unparseable URL ({problem}), not shown: it may hold a password"


def redacted_url(text: str) -> str:
    """``text`` as a summary or a message may show it: password and credential-like query values ``***``.

    A URL :func:`url_problem` finds fault with is shown as :data:`UNPARSEABLE`, never as written.
    """
    if is_placeholder(text):
        return text
    try:
        return _URL(text).shown()
    except ValueError:
        return UNPARSEABLE


def url_credentials(text: str) -> List[str]:
    """The literal credentials of a URL (its password, credential-like query values), as written and
    decoded: what a message quoting an error of the service reaching that URL must not show."""
    try:
        return _URL(text).credentials()
    except ValueError:
        return []


def hidden_in(text: str, values: List[str]) -> str:
    """``text`` with each of ``values`` (the longest first) replaced by ``***``; as for the run's secrets,
    values shorter than :data:`~magnus.redaction.MINIMUM_LENGTH` are left (they would hide ordinary text)."""
    for value in sorted(set(values), key=len, reverse=True):
        if len(value) >= MINIMUM_LENGTH:
            text = text.replace(value, MASK)
    return text


# ---- options -----------------------------------------------------------------------------------------
def redacted_options(options: Mapping[str, Any]) -> Dict[str, Any]:
    """``options`` as a summary may show them: under a credential-like key, at any depth, every value
    (a text, a number, each item of a list, each value of a mapping) becomes ``***``; URLs elsewhere
    are shown by :func:`redacted_url`.

    Placeholders (``${aws_secret}``) and empty values (``None``) are kept: they are not credentials.
    """
    return {key: _shown_option(value, is_credential_name(key)) for key, value in options.items()}


def _shown_option(value: Any, hidden: bool) -> Any:
    if isinstance(value, Mapping):
        return {key: _shown_option(item, hidden or is_credential_name(key)) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_shown_option(item, hidden) for item in value]
    if value is None or is_placeholder(value):
        return value
    if hidden:
        return MASK
    if isinstance(value, str) and "://" in value:
        return redacted_url(value)
    return value
