"""The package's tests run against real camfleet servers, which the caller starts:

    CAMFLEET_URL            a server on the repository's cameras.yaml (no accounts)
    CAMFLEET_ACCOUNTS_URL   a server with accounts: admin `ada` (password `ada-password`)
                            and cameras `a` and `b`
    CAMFLEET_VIEWER_TOKEN   a viewer token of that server, for camera `a` only

`cargo test --test api python` starts both and runs these tests.
"""

import asyncio
import os

import pytest


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(
            f"{name} is not set: run these tests with `cargo test --test api python`, "
            "which starts the servers they need",
            pytrace=False,
        )
    return value


@pytest.fixture
def url() -> str:
    return _env("CAMFLEET_URL")


@pytest.fixture
def accounts_url() -> str:
    return _env("CAMFLEET_ACCOUNTS_URL")


@pytest.fixture
def viewer_token() -> str:
    return _env("CAMFLEET_VIEWER_TOKEN")


@pytest.fixture
def run():
    """Runs a coroutine to completion on a new event loop."""
    return asyncio.run


def pytest_terminal_summary(terminalreporter):
    """Ends with the totals in the form the repository's CI adds up."""
    stats = terminalreporter.stats
    passed = len(stats.get("passed", []))
    failed = len(stats.get("failed", [])) + len(stats.get("error", []))
    terminalreporter.write_line(f"{passed} passed, {failed} failed")
