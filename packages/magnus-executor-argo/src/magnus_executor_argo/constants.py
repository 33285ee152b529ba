"""Names shared by the manifest, the executor and the pods; imports nothing heavy (no hera).

A map's fan-out pod imports the executor class only, so what it needs lives here or in core.
"""

# The executor's name: its type in a configuration, the key of a step's overrides.
SERVICE_NAME = "argo"
# The DAG template the workflow starts at.
ENTRYPOINT = "magnus-dag"
# The run id of every step: a workflow parameter, by default the workflow's uid.
RUN_ID_ARGUMENT = "run_id"
RUN_ID = "{{workflow.parameters." + RUN_ID_ARGUMENT + "}}"
# The input parameter carrying the map position (JSON) into templates inside a map.
MAP_INPUT = "map_variable"
MAP_VARIABLE = "{{inputs.parameters." + MAP_INPUT + "}}"
# The output parameter of a map's fan-out: the JSON list of its branches' map variables.
ITERATIONS = "iterations"
# Where core writes that list in the fan-out pod (``magnus fan ... -m out --iterations-file``).
ITERATIONS_PATH = "/tmp/magnus-iterations.json"
# Argo's count of earlier launches of a step with a retryStrategy (0 on the first), for --retry.
RETRIES = "{{retries}}"
# The output parameter of a conditional's fan-out: the label of the branch it chose (``when`` compares it).
CHOSEN = "branch"
# The input parameter carrying a loop's own map position into its iteration template, inside a map.
LOOP_INPUT = "loop_map_variable"
LOOP_VARIABLE = "{{inputs.parameters." + LOOP_INPUT + "}}"
