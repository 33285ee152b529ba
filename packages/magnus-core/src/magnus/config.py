"""The configuration file: which plugin provides each service, and with which settings.

Same shape as magnus 0.5.1::

    executor:
      type: local
    run_log_store:
      type: file-system
      config:
        log_folder: .run_log_store

``experiment_tracker:`` may also be a list of ``{type, config}`` blocks: every one of those
trackers receives what the run tracks ([`SeveralTrackers`][magnus.tracker.SeveralTrackers]).

Given by ``-c`` (or the SDK's ``configuration_file``), else the ``MAGNUS_CONFIG_FILE`` environment
variable, else magnus 0.5.1's SDK variable ``MAGNUS_CONFIGURATION_FILE``: one rule, resolved once
per run (:func:`configuration_path`), for the command line and the SDK alike. Unknown keys are refused at
every level, and an unknown ``type`` lists the installed choices and the package providing it.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional

from pydantic import ValidationError

from magnus import defaults
from magnus.errors import ConfigurationError
from magnus.names import did_you_mean
from magnus.plugins import installed_names, load_plugin
from magnus.service import BaseService
from magnus.validation import describe_validation_error
from magnus.yaml_file import load_yaml_mapping

# magnus 0.5.1's SDK read its configuration file from this variable.
_SDK_CONFIG_VARIABLE = "MAGNUS_CONFIGURATION_FILE"

SERVICES = ("executor", "run_log_store", "catalog", "secrets", "experiment_tracker", "pickler")
# The service that may be configured as a list of blocks, and the type such a list is read as.
SEVERAL_ALLOWED = "experiment_tracker"
SEVERAL = "several"


def default_service_types() -> Dict[str, str]:
    """What each service is when the config does not say.

    The catalog is ``file-system`` when magnus-catalog-fs is installed (as magnus 0.5.1's default),
    ``do-nothing`` otherwise.
    """
    return {
        "executor": "local",
        "run_log_store": "buffered",
        "catalog": "file-system" if "file-system" in installed_names("catalog") else "do-nothing",
        "secrets": "do-nothing",
        "experiment_tracker": "do-nothing",
        "pickler": "pickle",
    }


def load_configuration(path: str = "") -> Dict[str, Dict[str, Any]]:
    """``{service: {type, config}}`` for every service of the file at ``path`` (as
    :func:`configuration_path` resolved it; '' for none), defaults filled in.

    Raises:
        ConfigurationError: the file is missing, not YAML, or malformed.
    """
    declared = _read(path) if path else {}
    source = path or "configuration"
    resolved: Dict[str, Dict[str, Any]] = {}
    for service, default_type in default_service_types().items():
        block = declared.get(service)
        if block is None:
            resolved[service] = {"type": default_type, "config": {}}
            continue
        if service == SEVERAL_ALLOWED and isinstance(block, list):
            blocks = [_block(source, f"{service}[{index}]", item, None) for index, item in enumerate(block, start=1)]
            resolved[service] = {"type": SEVERAL, "config": {"blocks": blocks}}
            continue
        resolved[service] = _block(source, service, block, default_type)
    return resolved


def _block(source: str, where: str, block: Any, default_type: Optional[str]) -> Dict[str, Any]:
    """One ``{type, config}`` block, checked; ``where`` names it in messages (``experiment_tracker[2]``).

    Without a ``default_type`` (a block of a list), ``type`` is required.
    """
    if not isinstance(block, dict):
        also = " (or a list of such mappings)" if where == SEVERAL_ALLOWED else ""
        raise ConfigurationError(f"{source}: {where}: must be a mapping with 'type' and 'config'{also}")
    unknown = set(block) - {"type", "config"}
    if unknown:
        first = sorted(unknown)[0]
        raise ConfigurationError(
            f"{source}: {where}.{first}: unknown field (allowed: type, config){did_you_mean(first, ('type', 'config'))}"
        )
    service_type = block.get("type") or default_type
    if not service_type:
        raise ConfigurationError(f"{source}: {where}.type: missing (each tracker of the list names its type)")
    config = block.get("config") or {}
    if not isinstance(config, dict):
        raise ConfigurationError(f"{source}: {where}.config: must be a mapping")
    return {"type": str(service_type), "config": config}


def _read(path: str) -> Dict[str, Any]:
    content = load_yaml_mapping(path, "configuration file", ConfigurationError, "a mapping of services")
    unknown = [key for key in content if key not in SERVICES]
    if unknown:
        allowed = ", ".join(SERVICES)
        raise ConfigurationError(
            f"{path}: {unknown[0]}: unknown service (allowed: {allowed}){did_you_mean(unknown[0], SERVICES)}"
        )
    return content


def create_service(service: str, block: Dict[str, Any], source: str = "configuration", where: str = "") -> BaseService:
    """Instantiate the plugin a ``{type, config}`` block names, validating its config.

    ``experiment_tracker`` read from a list is one [`SeveralTrackers`][magnus.tracker.SeveralTrackers] of
    them all, each checked in turn (named ``experiment_tracker[N]`` in messages).

    Raises:
        ConfigurationError: unknown type (with the installed choices) or a bad config key.
    """
    if service == SEVERAL_ALLOWED and block["type"] == SEVERAL:
        from magnus.tracker import BaseExperimentTracker, SeveralTrackers

        members = [
            create_service(service, item, source, where=f"{service}[{index}]")
            for index, item in enumerate(block["config"]["blocks"], start=1)
        ]
        return SeveralTrackers([member for member in members if isinstance(member, BaseExperimentTracker)])
    try:
        service_class = load_plugin(service, block["type"])
    except ConfigurationError as exc:
        raise ConfigurationError(f"{source}: {where or service}.type: {exc}") from exc
    try:
        instance: BaseService = service_class(**block.get("config", {}))
    except ValidationError as exc:
        problems = describe_validation_error(
            exc, source=source, location=f"{where or service}.config", known_fields=service_class.model_fields
        )
        raise ConfigurationError(problems[0] if len(problems) == 1 else "; ".join(problems)) from exc
    return instance


def configuration_path(given: Optional[str]) -> str:
    """The configuration file of a run: the one given (``-c``, the SDK's argument), else
    ``MAGNUS_CONFIG_FILE``, else ``MAGNUS_CONFIGURATION_FILE``; '' for none (the defaults)."""
    return given or os.environ.get(defaults.ENV_CONFIG_FILE, "") or os.environ.get(_SDK_CONFIG_VARIABLE, "")
