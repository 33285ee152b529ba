"""The ``config:`` of the azureml executor: what its pipeline jobs are built from."""

from __future__ import annotations

from typing import Dict, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StepOverride(_Strict):
    """What one step may change (``overrides: {azureml: <name>}`` in the pipeline)."""

    compute: Optional[str] = None
    environment: Optional[str] = None
    instance_count: Optional[int] = Field(default=None, gt=0)
    instance_type: Optional[str] = None
    environment_variables: Dict[str, str] = Field(default_factory=dict)


class AzureMLSettings(_Strict):
    """The ``config:`` of the azureml executor.

    ``compute`` and ``environment`` are required: every node runs magnus there. With all three of
    ``subscription_id``, ``resource_group`` and ``workspace_name`` the job is submitted; with
    ``output_file`` it is only written.
    """

    compute: str = Field(description="Azure ML compute target of every node (e.g. cpu-cluster).")
    environment: str = Field(
        description="Environment of every node: azureml:NAME:VERSION, or an image (docker.io/...) with magnus."
    )
    experiment_name: str = Field(default="magnus", description="Experiment the pipeline job is filed under.")
    display_name: str = Field(default="", description="Display name of the job (the pipeline's file name by default).")
    subscription_id: str = Field(default="", description="Azure subscription of the workspace (to submit).")
    resource_group: str = Field(default="", description="Resource group of the workspace (to submit).")
    workspace_name: str = Field(default="", description="Azure ML workspace (to submit).")
    output_file: str = Field(default="", description="Write the pipeline job YAML here and submit nothing.")
    code: str = Field(
        default=".",
        description="Folder uploaded as every node's working folder: the project (code, pipeline, config, parameters).",
    )
    environment_variables: Dict[str, str] = Field(
        default_factory=dict, description="Environment variables of every node (names and values, never secrets)."
    )
    continue_on_step_failure: bool = Field(
        default=False, description="Let Azure ML go on with independent nodes after one failed."
    )
    overrides: Dict[str, StepOverride] = Field(
        default_factory=dict, description="Named changes for single steps, chosen by overrides: {azureml: name}."
    )

    @model_validator(mode="after")
    def _output_or_workspace(self) -> "AzureMLSettings":
        workspace = [self.subscription_id, self.resource_group, self.workspace_name]
        if any(workspace) and not all(workspace):
            raise ValueError("subscription_id, resource_group and workspace_name go together: set all three to submit")
        if not self.output_file and not all(workspace):
            raise ValueError(
                "set output_file (write the pipeline job), or subscription_id, resource_group and workspace_name "
                "(submit it)"
            )
        return self

    @property
    def submits(self) -> bool:
        """Whether the job goes to a workspace (else it is only written to ``output_file``)."""
        return not self.output_file
