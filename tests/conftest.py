"""Fixtures shared by the cross-package tests: moto's S3 server (magnus.testing.s3)."""

from magnus.testing.s3 import s3_bucket, s3_server  # noqa: F401 (fixtures)
from magnus.testing.signals import restore_ctrl_c

restore_ctrl_c()  # a test sends Ctrl-C to magnus, even when the test run started with it ignored
