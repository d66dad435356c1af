"""The add-on's verbs (save a card, pay an invoice, reconcile, register), and the one
object that carries what they need: the database, both protocol clients and the settings."""

from dataclasses import dataclass, field
from typing import Callable

import requests
from sqlalchemy.orm import sessionmaker

from .. import __version__
from ..db import make_engine, make_session_factory
from ..ippay import IPpayClient
from ..splynx import SplynxClient
from .settings import ModuleSettings

SOFTWARE = f"splynx-ippay/{__version__}"


@dataclass
class AddOn:
    """Everything a service needs, built once per process from the bootstrap settings."""

    settings: dict
    sessions: sessionmaker
    gateway: IPpayClient  # in practice a GatewaySelector standing for one
    splynx: SplynxClient
    module_settings: ModuleSettings
    today: Callable = field(default=None)
    #: Payment statement process ids by title (statements.py), shared by every thread.
    statement_processes: object = field(default=None)

    @property
    def engine(self):
        return self.sessions.kw["bind"]

    def __post_init__(self):
        if self.today is None:
            import datetime

            self.today = datetime.date.today
        if self.statement_processes is None:
            from .statements import ProcessCache

            self.statement_processes = ProcessCache()


def _http_session(pool_size):
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=pool_size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = SOFTWARE
    return session


def build_addon(settings, engine=None, pool_size=32):
    """Wire the database and both clients from validated bootstrap ``settings``."""
    from .staff_settings import GatewaySelector

    engine = engine or make_engine(settings["DATABASE_URL"])
    gateway_http = _http_session(pool_size)

    def gateway_for(url, terminal_id):
        return IPpayClient(
            url, terminal_id, session=gateway_http,
            connect_timeout=settings["IPPAY_CONNECT_TIMEOUT"],
            read_timeout=settings["IPPAY_READ_TIMEOUT"],
            software=SOFTWARE,
        )

    splynx = SplynxClient(
        settings["SPLYNX_URL"], settings["SPLYNX_API_KEY"], settings["SPLYNX_API_SECRET"],
        session=_http_session(pool_size),
        read_timeout=settings["SPLYNX_TIMEOUT"],
    )
    module_settings = ModuleSettings(splynx)
    # The gateway's address and Terminal ID come from the module settings (the staff
    # settings page), else config.ini; the client is rebuilt when they change.
    gateway = GatewaySelector(gateway_for, module_settings, settings)
    return AddOn(settings=settings, sessions=make_session_factory(engine), gateway=gateway,
                 splynx=splynx, module_settings=module_settings)
