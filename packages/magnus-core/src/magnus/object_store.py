"""Folders of object stores named by URL (``s3://``, ``gs://``, ``az://``, ``file://``, ``memory://``).

The services that keep state in an object store (the ``fsspec`` catalog, ``chunked-fs`` on a URL)
share what is here: telling a URL from a local path, filling ``${name}`` placeholders of their
``storage_options`` from the secrets backend, and opening the store through
`fsspec <https://filesystem-spec.readthedocs.io>`_. fsspec is imported only when a store is opened,
so core does not depend on it; a missing backend (s3fs, gcsfs, adlfs) is one line naming the extra
to install. Summaries show ``storage_options`` through :func:`magnus.credentials.redacted_options`,
and messages the URL through :func:`magnus.credentials.redacted_url`.
"""

from __future__ import annotations

import os
from typing import Any, Callable, List, Mapping, Optional, Tuple

from magnus.credentials import PLACEHOLDER, hidden_in, redacted_url, url_credentials
from magnus.errors import ConfigurationError
from magnus.reach import Reach

# The extra of a first-party package that installs each protocol's fsspec backend.
_EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure", "abfs": "azure", "abfss": "azure"}


def is_url(location: str) -> bool:
    """Whether ``location`` names an object store (``scheme://...``) rather than a local folder."""
    return "://" in location


def protocol(location: str) -> str:
    """The scheme of a URL (``s3``), ``file`` for a local path."""
    return location.split("://", 1)[0].lower() if is_url(location) else "file"


def local_folder(location: str) -> Optional[str]:
    """The folder of this machine that ``location`` names (a path, ``file://``), None for a store."""
    if not is_url(location):
        return location
    if protocol(location) == "file":
        return location.split("://", 1)[1] or "/"
    return None


def url_reach(location: str) -> Reach:
    """How far state kept at ``location`` reaches: a local folder this machine, fsspec's ``memory://``
    this process, an object store any host."""
    if local_folder(location) is not None:
        return Reach.MACHINE
    return Reach.PROCESS if protocol(location) == "memory" else Reach.ANYWHERE


def placeholder_names(value: Any) -> List[str]:
    """The secret names that ``${name}`` placeholders in ``value`` (text, or nested lists and dicts) refer to."""
    if isinstance(value, str):
        return [match.group(1) for match in PLACEHOLDER.finditer(value)]
    if isinstance(value, Mapping):
        return [name for item in value.values() for name in placeholder_names(item)]
    if isinstance(value, (list, tuple)):
        return [name for item in value for name in placeholder_names(item)]
    return []


def fill_placeholders(value: Any, secret: Callable[[str], str]) -> Any:
    """``value`` with every ``${name}`` in its text replaced by ``secret(name)`` (nested lists and dicts too).

    A text that is one placeholder becomes the secret's value as it is.
    """
    if isinstance(value, str):
        return PLACEHOLDER.sub(lambda match: secret(match.group(1)), value)
    if isinstance(value, Mapping):
        return {key: fill_placeholders(item, secret) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [fill_placeholders(item, secret) for item in value]
    return value


def install_hint(location: str, package: str) -> str:
    """``pip install 'PACKAGE[EXTRA]'`` for the backend of ``location``'s protocol."""
    extra = _EXTRAS.get(protocol(location))
    return f"pip install '{package}[{extra}]'" if extra else f"pip install '{package}' and the fsspec backend of it"


class StoreFolder:
    """A folder of an object store: its fsspec file system (one per process) and the folder's path in it.

    File systems are opened on first use, and again in a forked child: fsspec's asynchronous
    backends (s3fs, gcsfs, adlfs) refuse to be used across a fork.
    """

    def __init__(self, location: str, options: Mapping[str, Any], field: str, package: str) -> None:
        self.location = location
        self.shown = redacted_url(location)  # what messages say: a password in the URL as ***
        # Listings are never cached: other processes (map iterations, pods) write the same folders.
        self.options = {"use_listings_cache": False, **options}
        if protocol(location) == "file":
            self.options.setdefault("auto_mkdir", True)  # an object store needs no folders; a disk does
        self.field = field
        self.package = package
        self._opened: Optional[Tuple[int, Any, str]] = None

    @classmethod
    def configured(
        cls,
        location: str,
        options: Mapping[str, Any],
        secret: Optional[Callable[[str], str]],
        field: str,
        package: str,
    ) -> "StoreFolder":
        """The folder of a service's configuration, its ``${name}`` placeholders filled by ``secret``.

        Raises:
            ConfigurationError: the options name secrets and no secrets backend was handed over
                (``secret`` is None), naming ``field`` and the secrets.
        """
        names = placeholder_names(options)
        if names and secret is None:
            raise ConfigurationError(
                f"{field}: storage_options name secrets ({', '.join(names)}) but no secrets backend was handed "
                "over (magnus does when it composes a run; in code call resolve_secrets)"
            )
        return cls(location, fill_placeholders(options, secret) if secret is not None else options, field, package)

    @property
    def fs(self) -> Any:
        """The fsspec file system (``fsspec.AbstractFileSystem``)."""
        return self._open()[0]

    @property
    def root(self) -> str:
        """The folder's path inside the file system (``bucket/prefix``), without a trailing ``/``."""
        return self._open()[1]

    def path(self, *names: str) -> str:
        """The path of ``names`` (``run_id``, ``data/rows.csv``) inside the folder."""
        return "/".join([self.root, *names]) if names else self.root

    def open(self) -> None:
        """Open the file system now: a missing backend or a bad option is refused before a run starts."""
        self._open()

    def _open(self) -> Tuple[Any, str]:
        opened = self._opened
        if opened is not None and opened[0] == os.getpid():
            return opened[1], opened[2]
        try:
            import fsspec
        except ImportError:
            raise ConfigurationError(
                f"{self.field}: '{self.shown}' needs fsspec: {install_hint(self.location, self.package)}"
            ) from None
        try:
            fs, root = fsspec.core.url_to_fs(self.location, **self.options)
        except ImportError:
            raise ConfigurationError(
                f"{self.field}: the backend of '{self.shown}' is not installed: "
                f"{install_hint(self.location, self.package)}"
            ) from None
        except (ValueError, TypeError) as exc:
            reason = hidden_in(str(exc), url_credentials(self.location))
            raise ConfigurationError(f"{self.field}: '{self.shown}' cannot be opened: {reason}") from None
        root = str(root).rstrip("/")
        self._opened = (os.getpid(), fs, root)
        return fs, root


def write_text(location: str, text: str) -> None:
    """Write ``text`` to the file ``location``: a path of this machine, or an object store's URL.

    What a process hands to an engine that reads it from elsewhere (a map's items for AWS Step
    Functions' ``ItemReader``, from S3) goes to a URL; fsspec and its backend are needed then only.

    Raises:
        ConfigurationError: fsspec or the URL's backend is not installed.
    """
    if local_folder(location) is not None:
        from pathlib import Path

        Path(local_folder(location) or location).write_text(text)
        return
    hint = install_hint(location, "magnus-catalog-fsspec")
    try:
        import fsspec
    except ImportError:
        raise ConfigurationError(f"'{redacted_url(location)}' needs fsspec: {hint}") from None
    try:
        with fsspec.open(location, "w") as written:
            written.write(text)
    except ImportError:
        raise ConfigurationError(f"the backend of '{redacted_url(location)}' is not installed: {hint}") from None
