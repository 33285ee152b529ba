"""Checks that an executor and a service can work together, before a run starts.

Some combinations cannot work (a ``buffered`` run log, held in one process's memory, with an
executor that runs each step in its own container). Core refuses those from what services
declare (their reach, checked once by the executor); plugins add their own rules as
``integration`` entry points named
``<executor>-<service_type>-<service>`` (magnus 0.5.1's scheme), each a :class:`BaseIntegration`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from magnus.plugins import is_installed, load_plugin

if TYPE_CHECKING:
    from magnus.executor.base import BaseExecutor
    from magnus.service import BaseService


class BaseIntegration:
    """One executor x service rule. Raise `ConfigurationError` to refuse the pair."""

    def __init__(self, executor: "BaseExecutor", service: "BaseService") -> None:
        self.executor = executor
        self.service = service

    def validate(self) -> None:
        """Refuse a pair that cannot work."""

    def configure_for_traversal(self) -> None:
        """Adjust the service where the graph is walked (the orchestrating process)."""

    def configure_for_execution(self) -> None:
        """Adjust the service where a step runs (a container or pod)."""


def _rule_for(executor: "BaseExecutor", service: "BaseService") -> BaseIntegration | None:
    name = f"{executor.service_name}-{service.service_type}-{service.service_name}"
    if not is_installed("integration", name):
        return None
    rule_class: Any = load_plugin("integration", name)
    rule: BaseIntegration = rule_class(executor, service)
    return rule


def validate(executor: "BaseExecutor", service: "BaseService") -> None:
    """Refuse a pair a plugin's rule refuses (how far a service reaches is checked by core, once:
    ``BaseExecutor.check_reach``)."""
    rule = _rule_for(executor, service)
    if rule is not None:
        rule.validate()


def configure_for_traversal(executor: "BaseExecutor", service: "BaseService") -> None:
    rule = _rule_for(executor, service)
    if rule is not None:
        rule.configure_for_traversal()


def configure_for_execution(executor: "BaseExecutor", service: "BaseService") -> None:
    rule = _rule_for(executor, service)
    if rule is not None:
        rule.configure_for_execution()
