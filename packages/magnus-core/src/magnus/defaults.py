"""Names and values fixed by compatibility with magnus 0.5.1."""

from __future__ import annotations

from typing import Any, Dict, Optional

LOGGER_NAME = "magnus"

# Environment variables
PARAMETER_PREFIX = "MAGNUS_PRM_"
TRACK_PREFIX = "MAGNUS_TRACK_"
STEP_INDICATOR = "_STEP_"
MAP_VARIABLE = "MAGNUS_MAP_VARIABLE"
ENV_RUN_ID = "MAGNUS_RUN_ID"
ENV_CONFIG_FILE = "MAGNUS_CONFIG_FILE"
ENV_DEBUG = "MAGNUS_DEBUG"

# Statuses
CREATED = "CREATED"
PROCESSING = "PROCESSING"
SUCCESS = "SUCCESS"
FAIL = "FAIL"
TRIGGERED = "TRIGGERED"

# The commands doing one unit of a run walked elsewhere (magnus 0.5.1's, and execute_branch)
EXECUTE_COMMAND = "execute_single_node"
FAN_COMMAND = "fan"
BRANCH_COMMAND = "execute_branch"

# Naming of internal graph parts
MAP_PLACEHOLDER = "map_variable_placeholder"
DAG_BRANCH_NAME = "dag"
COMMAND_FRIENDLY_CHARACTER = "%"

# Service defaults
LOG_FOLDER = ".run_log_store"
CATALOG_LOCATION = ".catalog"
# What a step printed is put in the catalog as <step>.execution.log[_<map item>...] (magnus 0.5.1's name).
EXECUTION_LOG_SUFFIX = ".execution.log"
COMPUTE_DATA_FOLDER = "."

TypeMapVariable = Optional[Dict[str, Any]]
