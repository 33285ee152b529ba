"""Run log models and stores (``from magnus.datastore import RunLog, StepLog`` as in magnus 0.5.1)."""

from magnus.datastore.base import BaseRunLogStore
from magnus.datastore.models import BranchLog, CodeIdentity, DataCatalog, RunLog, StepAttempt, StepLog

__all__ = ["BaseRunLogStore", "BranchLog", "CodeIdentity", "DataCatalog", "RunLog", "StepAttempt", "StepLog"]
