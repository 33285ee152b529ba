"""Names shared by the job, the executor and the compute's processes; imports nothing heavy (no azure).

A map's fan-out on the compute imports `magnus_executor_azureml.items` and the executor class
only, so what they need lives here or in core.
"""

# The executor's name: its type in a configuration, the key of a step's overrides.
SERVICE_NAME = "azureml"
# The schema Azure ML's CLI and SDK validate a pipeline job YAML against.
PIPELINE_JOB_SCHEMA = "https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json"
# Every command node's output that its successors take as an input: Azure ML runs a node once the
# nodes whose outputs it reads succeeded, so this is how "after" is written.
DONE = "done"
# A map's fan-out output: the items of its parallel_for (a JSON list of {MAP_INPUT: value}).
ITEMS = "items"
# The input of a map's body node carrying one item: the map position, quoted for the shell.
MAP_INPUT = "map_variable"
# Where core writes a map's branches (``magnus fan ... -m out --iterations-file``) on the compute.
ITERATIONS_PATH = "/tmp/magnus-iterations.json"
# A conditional's fan-out output: a folder holding the label of the branch chosen (file CHOSEN_FILE),
# which each branch's node reads to run its branch or nothing.
CHOSEN = "chosen"
CHOSEN_FILE = "branch"
# A loop's iteration, as do_while carries it: the body's input folder holding the map position
# (file POSITION_FILE), the output folder the next iteration reads (do_while's mapping), and the
# boolean control output do_while goes on while it is true.
POSITION = "position"
NEXT_POSITION = "next_position"
POSITION_FILE = "map_variable"
GO_ON = "go_on"
# Azure ML's do_while runs its body at most this many times.
MAX_DO_WHILE_ITERATIONS = 1000
