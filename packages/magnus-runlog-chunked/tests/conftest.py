"""The moto S3 server of magnus.testing, for the tests of chunked-fs on an object store, and a way
to spoil a run's part as a crash or a hand edit would."""

from magnus.datastore.base import BaseRunLogStore
from magnus.testing.s3 import s3_bucket, s3_server  # noqa: F401 (fixtures)
from magnus_runlog_chunked.store import ChunkedFileSystemRunLogStore


class SpoilsParts:
    """``spoil_step`` of the run log store contract, for chunked-fs on any storage."""

    def spoil_step(self, store: BaseRunLogStore, run_id: str, internal_name: str) -> None:
        """Cut the step's file in half, through the store's own storage (a folder or an object store)."""
        assert isinstance(store, ChunkedFileSystemRunLogStore)
        path, exists = store._locate(run_id, internal_name, "step")
        content = store._storage.read(path)
        assert exists and content
        store._storage.write(path, content[: len(content) // 2], durable=False)
