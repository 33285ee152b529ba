"""A real S3 HTTP API on loopback for tests: moto's server, started once per test session.

Use it from a ``conftest.py``::

    from magnus.testing.s3 import s3_bucket, s3_server  # noqa: F401 (fixtures)

- ``s3_server`` (session): moto's server on ``127.0.0.1`` and a free port, one request at a time; yields
  an :class:`S3Server` (endpoint, credentials, ``environment()``, ``storage_options()``,
  ``create_bucket()``, a boto3 ``client()``). Stopped at the end of the session.
- ``s3_bucket`` (per test): a new empty bucket, and the standard AWS environment
  (``AWS_ENDPOINT_URL``, keys, region) set for the test, as a cluster would set it for a pod, so
  boto3, s3fs and subprocesses started by the test reach the server with no options. Yields the
  bucket's name.

moto, boto3 (and s3fs for fsspec users) are test dependencies of the packages that use this
(``moto[server]``): they are imported here only when a fixture runs, so core does not depend on
them. Buckets are made with boto3, not ``s3fs.mkdir``, which sends a location constraint moto
refuses.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from typing import Any, Callable, Dict, Iterator, Tuple

import pytest

_REGION = "us-east-1"
_bucket_numbers = itertools.count()


@dataclasses.dataclass(frozen=True)
class S3Server:
    """Where the test S3 server answers, and the (fake, accepted) credentials for it."""

    endpoint_url: str
    access_key_id: str = "magnus-testing"
    secret_access_key: str = "magnus-testing-secret"
    region: str = _REGION

    def environment(self) -> Dict[str, str]:
        """The standard AWS variables that point boto3, s3fs and the AWS CLI at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }

    def storage_options(self) -> Dict[str, Any]:
        """fsspec ``storage_options`` of s3fs reaching this server without the environment."""
        return {
            "key": self.access_key_id,
            "secret": self.secret_access_key,
            "client_kwargs": {"endpoint_url": self.endpoint_url, "region_name": self.region},
        }

    def client(self) -> Any:
        """A boto3 S3 client of this server."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=self.region,
        )

    def create_bucket(self, name: str = "") -> str:
        """A new bucket (named ``magnus-test-<n>`` unless ``name`` is given); its name."""
        bucket = name or f"magnus-test-{next(_bucket_numbers)}"
        self.client().create_bucket(Bucket=bucket)
        return bucket

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every key of ``bucket`` under ``prefix``, sorted (read with boto3, not the code under test)."""
        paginator = self.client().get_paginator("list_objects_v2")
        return sorted(
            item["Key"]
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
            for item in page.get("Contents", [])
        )


def serve_moto() -> Tuple[str, Callable[[], None]]:
    """moto's server (every AWS service it emulates) on 127.0.0.1 and a free port; its endpoint and
    what stops it.

    Requests are answered one at a time (each holds a lock while moto handles it): moto checks a
    conditional put (``If-None-Match: *``) and then stores, two steps another thread could come
    between, where S3 does both at once. With the lock, two processes claiming one key at once see
    S3's answer, one 200 and one 412, however loaded the machine.
    """
    import threading

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request in every captured log
    moto_app = DomainDispatcherApplication(create_backend_app)
    one_at_a_time = threading.Lock()

    def app(environ: Any, start_response: Any) -> Any:
        with one_at_a_time:
            return list(moto_app(environ, start_response))

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = str(server.server_address[0]), int(server.server_address[1])

    def stop() -> None:
        server.shutdown()
        thread.join()

    return f"http://{host}:{port}", stop


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server on 127.0.0.1 and a free port, for the whole test session (:func:`serve_moto`)."""
    endpoint, stop = serve_moto()
    try:
        yield S3Server(endpoint_url=endpoint)
    finally:
        stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new empty bucket; the AWS environment of the server is set for the test."""
    for name, value in s3_server.environment().items():
        monkeypatch.setenv(name, value)
    return s3_server.create_bucket()
