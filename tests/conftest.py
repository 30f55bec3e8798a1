"""Test-wide settings: 4 fake CPU devices (sharding code runs in CI), shared data discovery."""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("TQDM_DISABLE", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared beside the checkout; tests that need it skip cleanly when it is absent."""
    if not SHARED.is_dir():
        pytest.skip("../shared is not present")
    return SHARED


@pytest.fixture(scope="session")
def daily_dir(shared_dir) -> Path:
    d = shared_dir / "data" / "daily"
    if not d.is_dir():
        pytest.skip("../shared/data/daily is not present")
    return d
