"""The old name of :mod:`.records`; kept so that ``splynx_ippay.splynx.models`` still imports."""

from .records import *  # noqa: F401,F403 - a re-export, nothing is defined here
