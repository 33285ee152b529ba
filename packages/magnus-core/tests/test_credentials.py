"""Credentials written into a configuration: URLs shown parsed, options masked by structure.

Before: a database URL's password given as a query parameter (``?password=``) was shown as
written, a password holding an unencoded ``@`` had its tail shown as the "host", and a storage
option was masked only when it was a text under a few known key names.
"""

from __future__ import annotations

import pytest

from magnus.credentials import (
    UNPARSEABLE,
    hidden_in,
    redacted_options,
    redacted_url,
    url_credentials,
    url_problem,
)

SHOWN = [
    ("postgresql://app:hunter2-pass@db.example:5432/magnus", "postgresql://app:***@db.example:5432/magnus"),
    (
        "postgresql://app@db/magnus?password=Query-Pass-1&sslpassword=Key-Pass-2&application_name=nightly",
        "postgresql://app@db/magnus?password=***&sslpassword=***&application_name=nightly",
    ),
    (
        "postgresql://db/m?PWD=a-b-c-d&passwd=e-f-g-h&sslmode=require",
        "postgresql://db/m?PWD=***&passwd=***&sslmode=require",
    ),
    (
        "https://user:p%40ss-word@mlflow.example:5000/x?api_key=K-1234#access_token=T-5678",
        "https://user:***@mlflow.example:5000/x?api_key=***#access_token=***",
    ),
    (
        "https://acct.blob.core.windows.net/c?sv=2022&sig=Signature-9",
        "https://acct.blob.core.windows.net/c?sv=2022&sig=***",
    ),
    ("file:/tmp/mlruns?token=Token-1234", "file:/tmp/mlruns?token=***"),
    # Placeholders name a secret, they are not one; nothing else to hide is shown as written.
    (
        "postgresql://app:${pw}@${host}:5432/magnus?password=${pw}",
        "postgresql://app:${pw}@${host}:5432/magnus?password=${pw}",
    ),
    ("${DATABASE_URL}", "${DATABASE_URL}"),
    ("sqlite:///logs/a@b.db", "sqlite:///logs/a@b.db"),
    ("abfs://container@account.dfs.core.windows.net/p", "abfs://container@account.dfs.core.windows.net/p"),
    ("databricks", "databricks"),
    (".run_log_store", ".run_log_store"),
]


@pytest.mark.parametrize(("written", "shown"), SHOWN)
def test_a_url_is_shown_with_its_password_and_credential_query_values_masked(written: str, shown: str) -> None:
    assert url_problem(written) == ""
    assert redacted_url(written) == shown


# Unencoded '@', '/', '?' in a password: RFC 3986 and SQLAlchemy read a different password.
AMBIGUOUS = [
    "postgresql://app:p@ss-Tail-42@db.example:5432/magnus",
    "postgresql://app:pa/ss-Tail-42@db.example/magnus",
    "postgresql://app:1234?ss-Tail-42@db.example/magnus",
    "https://app:1#ss-Tail-42@mlflow.example",
]


@pytest.mark.parametrize("written", AMBIGUOUS)
def test_a_url_parsers_read_differently_is_never_shown(written: str) -> None:
    problem = url_problem(written)
    assert problem and "Tail" not in problem and "ss" not in problem.replace("password", "")
    assert redacted_url(written) == UNPARSEABLE
    assert url_credentials(written) == []


def test_the_credentials_of_a_url_are_hidden_in_messages_as_written_and_decoded() -> None:
    written = "https://user:p%40ss-word@h/x?token=Tok%2B1234&name=run"
    assert sorted(url_credentials(written)) == sorted(["p%40ss-word", "p@ss-word", "Tok%2B1234", "Tok+1234"])
    message = "refused p@ss-word and p%40ss-word, token Tok+1234; run a"
    assert hidden_in(message, url_credentials(written)) == "refused *** and ***, token ***; run a"
    assert hidden_in("a b c", ["b"]) == "a b c", "values shorter than 4 characters are left (as for secrets)"


def test_options_are_masked_by_structure_at_any_depth_and_of_any_type() -> None:
    options = {
        "key": ["AKIA-1", "AKIA-2"],
        "secret": "${s}",
        "token": None,
        "passwd": 12345678,
        "auth": ("user", "Auth-Pass-3"),
        "headers": {"Authorization": "Bearer Header-Token-4", "Accept": "application/json"},
        "client_kwargs": {"aws_secret_access_key": {"nested": ["Deep-5"]}, "region_name": "eu"},
        "endpoint_url": "https://minio:Url-Pass-6@minio.example:9000",
        "profile": "dev",
        "anon": False,
    }
    assert redacted_options(options) == {
        "key": ["***", "***"],
        "secret": "${s}",
        "token": None,
        "passwd": "***",
        "auth": ["***", "***"],
        "headers": {"Authorization": "***", "Accept": "application/json"},
        "client_kwargs": {"aws_secret_access_key": {"nested": ["***"]}, "region_name": "eu"},
        "endpoint_url": "https://minio:***@minio.example:9000",
        "profile": "dev",
        "anon": False,
    }
