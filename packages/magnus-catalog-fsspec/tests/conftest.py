"""The moto S3 server of magnus.testing, for every test of the package."""

from magnus.testing.s3 import s3_bucket, s3_server  # noqa: F401 (fixtures)
