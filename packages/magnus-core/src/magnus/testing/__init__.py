"""Contract test suites for plugin authors (requires pytest).

Each suite is a class of tests written once against a base class's promises. A plugin package
subclasses it in its own tests and provides a fixture that builds its implementation::

    from magnus.testing import RunLogStoreContract

    class TestMyStore(RunLogStoreContract):
        persistent = True

        @pytest.fixture
        def make_store(self, tmp_path):
            return lambda: MyStore(folder=str(tmp_path))

Core runs the same suites against its built-ins.
"""

from magnus.testing.catalog import CatalogContract
from magnus.testing.executor import ExecutorContract
from magnus.testing.run_log_store import RunLogStoreContract
from magnus.testing.secrets import SecretsContract
from magnus.testing.tracker import ExperimentTrackerContract

__all__ = [
    "CatalogContract",
    "ExecutorContract",
    "ExperimentTrackerContract",
    "RunLogStoreContract",
    "SecretsContract",
]
