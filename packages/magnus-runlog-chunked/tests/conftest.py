"""The moto S3 server of magnus.testing, for the tests of chunked-fs on an object store."""

from magnus.testing.s3 import s3_bucket, s3_server  # noqa: F401 (fixtures)
