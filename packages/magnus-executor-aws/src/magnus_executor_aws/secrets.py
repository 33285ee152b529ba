"""``secrets: {type: aws-secrets-manager, config: {prefix, region}}``: secrets from AWS Secrets Manager.

The secret ``name`` is the Secrets Manager secret ``<prefix><name>`` (its ``SecretString``), read
where a step asks for it, with the credentials of the process (a Batch job's IAM role). Values
never enter the state machine, the job definitions, the run log or the progress output: they are
read in the job, and masked there like every secret.
"""

from __future__ import annotations

from typing import Any, ClassVar, Dict, Optional

from pydantic import Field, PrivateAttr

from magnus.errors import SecretNotFoundError, ServiceError
from magnus.secrets import BaseSecrets
from magnus_executor_aws.constants import SECRETS_NAME


class SecretsManagerSecrets(BaseSecrets):
    """Reads secrets from AWS Secrets Manager, one call per secret, each value kept for the process."""

    service_name: ClassVar[str] = SECRETS_NAME

    prefix: str = Field(default="", description="Put before a secret's name to make its Secrets Manager name.")
    region: str = Field(default="", description="AWS region (else the AWS SDK's default chain).")

    _client: Any = PrivateAttr(default=None)
    _read: Dict[str, str] = PrivateAttr(default_factory=dict)

    def secret_id(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def get(self, name: str) -> str:
        if name in self._read:
            return self._read[name]
        try:
            answer = self._secrets_manager().get_secret_value(SecretId=self.secret_id(name))
        except Exception as exc:  # noqa: BLE001 - botocore's errors, told apart by their code
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
            if code == "ResourceNotFoundException":
                raise SecretNotFoundError(
                    name, self.service_name, f"no secret '{self.secret_id(name)}' in AWS Secrets Manager"
                ) from None
            # the message of the SDK names the secret and the error, never a value
            raise ServiceError(
                f"secrets '{self.service_name}': reading '{self.secret_id(name)}' failed: {exc}"
            ) from None
        value: Optional[str] = answer.get("SecretString")
        if value is None:
            raise SecretNotFoundError(name, self.service_name, f"'{self.secret_id(name)}' holds binary data, not text")
        self._read[name] = value
        return value

    def _secrets_manager(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.session.Session(region_name=self.region or None).client("secretsmanager")
        return self._client
