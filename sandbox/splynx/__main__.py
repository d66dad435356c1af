"""``python -m sandbox.splynx --port N [--host H]``: serve the emulator."""

from sandbox.serve import run_foreground
from sandbox.splynx import create_app

run_foreground(create_app(), "Splynx emulator", 8081)
