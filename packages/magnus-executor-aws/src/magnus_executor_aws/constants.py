"""Names shared by the renderer, the executor and the jobs; imports nothing heavy (no boto3).

A job imports the executor class only (to load the configuration it was given), so what it needs
lives here or in core.
"""

# The executor's name: its type in a configuration, the key of a step's overrides.
SERVICE_NAME = "aws-step-functions"
# The secrets backend's name.
SECRETS_NAME = "aws-secrets-manager"
# Step Functions' quotas the definition is checked against before anything is submitted.
MAX_DEFINITION_BYTES = 1024 * 1024
MAX_PAYLOAD_BYTES = 256 * 1024
MAX_STATE_NAME = 80
MAX_EXECUTION_NAME = 80
# AWS Batch's rule for job names (SubmitJob's jobName).
MAX_JOB_NAME = 128
