"""Contract test suites for plugin authors (requires pytest).

Each suite is a class of tests written once against a base class's promises. A plugin package
subclasses it in its own tests and provides the fixtures (or methods) that build its
implementation::

    from magnus.testing import RunLogStoreContract

    class TestMyStore(RunLogStoreContract):
        persistent = True

        @pytest.fixture
        def make_store(self, tmp_path):
            return lambda: MyStore(folder=str(tmp_path))

Core runs the same suites against its built-ins. The suites, and what each promises:

- :class:`RunLogStoreContract` (``make_store``, ``spoil_step()``): run logs, steps and branches
  round-trip in the magnus 0.5.1 layout, parameters and run config merge; runs are listed with
  summaries that agree with their logs; a spoilt run is refused in one line and left out of
  listings; persistent stores are seen by other store objects, and concurrent writers (when
  promised) lose nothing.
- :class:`CatalogContract` (``catalog``): data put in a run is got back elsewhere, by name or
  glob, kept apart per run, synced between runs; paths leaving the folder are refused.
- :class:`SecretsContract` (``make_secrets``): known secrets are returned, a missing one is an
  error naming it and no value; summaries hold no value.
- :class:`ExperimentTrackerContract` (``tracker``, ``tracked()``): metrics of a run and of its
  steps, from any process of the run, reach the tool and are read back (parameters too, with
  ``parameters()``); do-nothing trackers opt out with ``keeps_nothing = True``.
- :class:`PicklerContract` (``pickler``): objects round-trip through ``<path><extension>``;
  loading what was never written raises.
- :class:`TaskTypeContract` (``make_task()``, ``make_failing_task()``): a command receives the
  parameters, sets parameters (returned or exported), prints to stdout, raises when it fails;
  empty commands and unknown fields are refused.
- :class:`NodeContract` (``node_class``, ``config``): a node type parses from its config, declares
  coherent flags, routes to steps by name, names its logs and branch runs with map positions
  resolved, and refuses unknown fields.
- :class:`ExecutorContract` (``configuration``, or ``make_executor``): reference pipelines
  (parameters, shell, parallel, map, failure routes, resume) end as they do locally.
  :func:`run_with_executor` runs any pipeline with an executor instance, installed or not.

Plugins for tests: :func:`magnus.testing.plugins.installed_plugins` registers entry points for
the length of a block, as an installed distribution would (a tracker next to another;
``magnus.testing.secrets:KnownSecrets``, a secrets backend holding given values, to check masking).

Services for tests: :mod:`magnus.testing.s3` starts moto's S3 server over HTTP once per session
(fixtures ``s3_server`` and ``s3_bucket``; import them in a ``conftest.py``), for services on
object stores; moto is the test dependency of the packages that use it, not of core.
"""

from magnus.testing.catalog import CatalogContract
from magnus.testing.executor import ExecutorContract, run_with_executor
from magnus.testing.node import NodeContract
from magnus.testing.pickler import PicklerContract
from magnus.testing.run_log_store import RunLogStoreContract
from magnus.testing.secrets import SecretsContract
from magnus.testing.task_type import TaskTypeContract
from magnus.testing.tracker import ExperimentTrackerContract

__all__ = [
    "CatalogContract",
    "ExecutorContract",
    "ExperimentTrackerContract",
    "NodeContract",
    "PicklerContract",
    "RunLogStoreContract",
    "SecretsContract",
    "TaskTypeContract",
    "run_with_executor",
]
