"""Fixtures of the Splynx client's tests against the emulator."""

import pytest

from splynx_ippay.splynx import SplynxClient
from tests.integration.splynx.splynx_helpers import KEY, SECRET


@pytest.fixture
def splynx(splynx_emu):
    """A token-mode client of the seeded emulator."""
    return SplynxClient(splynx_emu.url, KEY, SECRET)

