"""Emulators for the contract tests: ``splynx_emu`` (tests/conftest.py) runs in the
default mode of the run (strict unless ``SPLYNX_SANDBOX_STRICT=0``); these pin a mode."""

import pytest

from sandbox.serve import BackgroundServer

@pytest.fixture(scope="module")
def seeded_emu():
    """One emulator shared by read-only tests (each server costs ~0.5 s to stop)."""
    from sandbox.splynx import create_app

    with BackgroundServer(create_app()) as server:
        yield server


@pytest.fixture
def lenient_emu():
    """Strict mode off: for contract tests of rules that bodies outside the blueprint's
    types exercise (labels as names, invoices without a number)."""
    from sandbox.splynx import create_app

    with BackgroundServer(create_app({"strict": False})) as server:
        yield server


@pytest.fixture
def strict_emu():
    """Strict mode on and undocumented methods refused, whatever the run's default."""
    from sandbox.splynx import create_app

    with BackgroundServer(create_app({"strict": True, "undocumented_methods": "refuse"})) as server:
        yield server
