"""Services whose configuration names secrets get them from the run's secrets backend, once."""

from __future__ import annotations

import json
from typing import Any, Callable, ClassVar, Dict, List

import pytest
from pydantic import PrivateAttr

from magnus import entrypoints
from magnus.datastore.buffered import BufferedRunLogStore
from magnus.errors import SecretNotFoundError
from magnus.runtime.services import RunOptions
from magnus.secrets import BaseSecrets

PASSWORD = "s3cret-password"


class KnownSecrets(BaseSecrets):
    service_name: ClassVar[str] = "known"

    def get(self, name: str) -> str:
        if name == "db_password":
            return PASSWORD
        raise SecretNotFoundError(name, self.service_name)


class StoreNamingASecret(BufferedRunLogStore):
    """A store whose config names the secret it needs (as a database URL's ``${db_password}``)."""

    password_secret: str = "db_password"
    _password: str = PrivateAttr(default="")
    _calls: List[str] = PrivateAttr(default_factory=list)

    def resolve_secrets(self, secret: Callable[[str], str]) -> None:
        self._calls.append("resolve")
        self._password = secret(self.password_secret)

    def run_log_exists(self, run_id: str) -> bool:
        # The store is used (to pick a run id) only after its secrets were handed over.
        assert self._password, "store used before resolve_secrets"
        return super().run_log_exists(run_id)


@pytest.fixture
def services_of(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Dict[str, Any]]:
    def configure(**overrides: Any) -> Dict[str, Any]:
        real = entrypoints.create_service

        def create(name: str, block: Dict[str, Any], source: str = "configuration") -> Any:
            return overrides[name] if name in overrides else real(name, block, source)

        monkeypatch.setattr(entrypoints, "create_service", create)
        return overrides

    return configure


def _pipeline() -> Any:
    return entrypoints.load_dag(entrypoints.single_task_dag("step", {"type": "stub"}))


def test_compose_hands_secrets_to_services_before_use(services_of: Callable[..., Dict[str, Any]]) -> None:
    created = services_of(secrets=KnownSecrets(), run_log_store=StoreNamingASecret())
    _, services = entrypoints.compose(_pipeline(), RunOptions())
    store = created["run_log_store"]
    assert services.run_log_store is store
    assert store._password == PASSWORD and store._calls == ["resolve"]
    # The value is masked in what the run writes, and never in the recorded configuration.
    assert services.redactor.redact(f"connect with {PASSWORD}") == "connect with ***"
    assert PASSWORD not in json.dumps(services.run_config)


def test_an_unknown_secret_stops_composition(services_of: Callable[..., Dict[str, Any]]) -> None:
    services_of(secrets=KnownSecrets(), run_log_store=StoreNamingASecret(password_secret="missing"))
    with pytest.raises(SecretNotFoundError, match="'missing'"):
        entrypoints.compose(_pipeline(), RunOptions(run_id="run-1"))


def test_services_without_secrets_are_untouched() -> None:
    _, services = entrypoints.compose(_pipeline(), RunOptions(run_id="run-1"))
    assert not services.redactor
