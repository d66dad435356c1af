"""Test data for the IPpay client against the simulator."""

import time

from splynx_ippay.ippay import Card
from tests.unit.ippay.fakes import PAN


def future_card(number=PAN, **kw):
    """A card that expires in two years (the simulator declines expired cards with 054)."""
    return Card(number, 12, time.gmtime().tm_year + 2, **kw)
