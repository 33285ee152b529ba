"""Reaching the Ray cluster a run's steps go to: checked in seconds, before anything runs.

``ray.init`` at an address where nothing answers keeps retrying for a long time; a TCP connection
to the address first says within :data:`REACH_SECONDS` whether anything listens there. ``auto``
is Ray's own lookup (``RAY_ADDRESS``, then the cluster started last on this machine), which
answers at once when there is none; an empty address starts a Ray of this run's own.
"""

from __future__ import annotations

import logging
import socket
from typing import Any, Dict, Optional, Tuple

from magnus.errors import ConfigurationError

REACH_SECONDS = 3.0
_RAY_CLIENT_PORT = 10001
_GCS_PORT = 6379
_HEALTH_CHECK = "/grpc.health.v1.Health/Check"  # what every Ray GCS answers


def host_and_port(address: str) -> Optional[Tuple[str, int]]:
    """The host and port a ``host:port`` or ``ray://host[:port]`` address names; None for ``auto`` and ''.

    Raises:
        ConfigurationError: the address is neither.
    """
    if address in ("", "auto", "local"):
        return None
    client = address.startswith("ray://")
    rest = address[len("ray://") :] if client else address
    host, _, port = rest.rpartition(":") if ":" in rest else (rest, "", "")
    if not port:
        return host, _RAY_CLIENT_PORT if client else _GCS_PORT
    if not host or not port.isdigit():
        raise ConfigurationError(
            f"executor.config.address: '{address}' is not host:port, ray://host:port, auto or empty"
        )
    return host, int(port)


def check_reachable(address: str) -> None:
    """Refuse an address where no Ray cluster answers, within :data:`REACH_SECONDS`.

    A ``host:port`` address is asked what a Ray GCS answers (gRPC's health check): something else
    listening there (a proxy, another server) is refused as surely as nothing; a ``ray://`` address
    (Ray's client server) is only connected to.

    Raises:
        ConfigurationError: one line naming the address and the fix.
    """
    named = host_and_port(address)
    if named is None:
        return
    problem = _tcp_problem(named) if address.startswith("ray://") else _gcs_problem(named)
    if problem:
        raise ConfigurationError(
            f"executor.config.address: no Ray cluster answers at '{address}' ({problem}): "
            "start one there (ray start --head) or fix the address"
        )


def _tcp_problem(named: Tuple[str, int]) -> str:
    try:
        with socket.create_connection(named, timeout=REACH_SECONDS):
            return ""
    except OSError as exc:
        return exc.strerror or type(exc).__name__


def _gcs_problem(named: Tuple[str, int]) -> str:
    """'' when a Ray GCS answers at ``named``, else what did (gRPC comes with ``ray[default]``)."""
    try:
        import grpc  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        return _tcp_problem(named)
    channel = grpc.insecure_channel(f"{named[0]}:{named[1]}")
    try:
        check = channel.unary_unary(_HEALTH_CHECK, request_serializer=bytes, response_deserializer=bytes)
        check(b"", timeout=REACH_SECONDS)
        return ""
    except grpc.RpcError as exc:
        details = " ".join(str(exc.details() or "").split())  # a failed call is also its grpc.Call
        return f"{exc.code().name}: {details}"[:200]
    finally:
        channel.close()


def connect(address: str, runtime_env: Dict[str, Any]) -> bool:
    """Connect this process to the cluster at ``address`` (a new Ray of its own when empty); whether
    it connected now (False: it was connected already, by its caller, and stays so).

    Raises:
        ConfigurationError: Ray refused the address or the runtime_env, in one line.
    """
    import ray

    if ray.is_initialized():
        return False
    options: Dict[str, Any] = {"logging_level": logging.WARNING, "configure_logging": False}
    if runtime_env:
        options["runtime_env"] = runtime_env
    if not address:
        options.update(include_dashboard=False)
    try:
        ray.init(address=address or None, **options)
    except Exception as exc:  # noqa: BLE001 - Ray raises many kinds; each is this one refusal
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigurationError(
            f"executor.config.address: cannot connect to Ray at '{address or 'a new local Ray'}': {first}"
        ) from None
    return True
