"""The composition root: one :class:`Context` per process carries what the services need —
the bootstrap settings, database sessions, the Splynx client, the module settings and the
IPpay clients — built once by :func:`build_context` from config.ini.

Services receive a Context as their first argument and never import this module; only the
entry points (the app factory, the CLI, the worker command) build one.
"""

import datetime
import logging
import secrets
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional
from urllib.parse import urlsplit

import requests
from requests.sessions import merge_setting
from requests.structures import CaseInsensitiveDict
from sqlalchemy.orm import sessionmaker

from . import __version__
from .cache import TTLCache
from .config import GATEWAY_URLS
from .db import make_engine, make_session_factory
from .ippay import GatewayRequestError, IPpayClient
from .models import GatewayMode
from .services.settings import ModuleSettingsStore, Terminal
from .services.statements import ProcessCache
from .splynx import SplynxClient

log = logging.getLogger(__name__)

SOFTWARE = f"splynx-ippay/{__version__}"


class GatewayUnavailable(GatewayRequestError):
    """No gateway may be used right now (settings unreadable or invalid); nothing was sent."""


class GatewayDirectory:
    """The IPpay clients of this process, one per (endpoint, terminal), and the rule that
    picks the endpoint.

    IPpay's test and live endpoints (config.GATEWAY_URLS) are the only ones the settings
    page offers. config.ini's ``[ippay] url`` may name one other (root's choice: a staging
    gateway, the sandbox simulator); it is then the endpoint of every terminal. Every
    client checks its address against that rule again before each request (``url_guard``).
    """

    def __init__(self, bootstrap, http_session):
        self._bootstrap = bootstrap
        self._http = http_session
        configured = bootstrap["IPPAY_URL"]
        #: The endpoint config.ini fixes, when it is not one of IPpay's own.
        self.custom_url = None if configured in GATEWAY_URLS.values() else configured
        self._allowed = set(GATEWAY_URLS.values()) | ({self.custom_url} - {None})
        self._clients = {}

    def url_for(self, mode):
        """The endpoint of ``mode``."""
        mode = GatewayMode(mode)
        if self.custom_url is not None:
            return self.custom_url
        if mode == GatewayMode.CUSTOM:
            raise GatewayUnavailable("this terminal was on a custom gateway that config.ini "
                                     "no longer names")
        return GATEWAY_URLS[mode.value]

    def check_url(self, url):
        """Refuse (nothing is sent) any address the rule above does not allow."""
        if url not in self._allowed:
            raise GatewayUnavailable(f"the gateway address {url} is not allowed; IPpay's own "
                                     "endpoints or the one config.ini names only")

    def terminal_for(self, partner_settings, read_ok=True):
        """The terminal a partner's new payments and cards go to.

        Raises :class:`GatewayUnavailable` when the settings could not be read or name no
        usable endpoint: the add-on never guesses a gateway.
        """
        if not read_ok:
            raise GatewayUnavailable("the gateway settings could not be read from Splynx")
        terminal_id = partner_settings.terminal_id or self._bootstrap["IPPAY_TERMINAL_ID"]
        if self.custom_url is not None:
            return Terminal(GatewayMode.CUSTOM, terminal_id)
        if partner_settings.gateway_mode is None:
            raise GatewayUnavailable("the module setting gateway_mode is not test or live")
        return Terminal(partner_settings.gateway_mode, terminal_id)

    def client(self, terminal):
        """The IPpay client of ``terminal`` (made once, then reused)."""
        url = self.url_for(terminal.mode)
        key = (url, terminal.terminal_id)
        client = self._clients.get(key)
        if client is None:
            client = IPpayClient(
                url, terminal.terminal_id, session=self._http, software=SOFTWARE,
                connect_timeout=self._bootstrap["IPPAY_CONNECT_TIMEOUT"],
                read_timeout=self._bootstrap["IPPAY_READ_TIMEOUT"], url_guard=self.check_url)
            self._clients[key] = client
        return client


@dataclass(frozen=True)
class Context:
    """Everything a service needs, built once per process (see :func:`build_context`)."""

    #: The bootstrap settings (config.ini, secrets.ini, environment), upper-case names.
    settings: Mapping
    sessions: sessionmaker
    splynx: SplynxClient
    module_settings: ModuleSettingsStore
    gateways: GatewayDirectory
    #: The key that signs direct links and form keys (``[web] secret_key``).
    secret: bytes
    #: Payment statement process ids by title (services/statements.py), shared by threads.
    statement_processes: ProcessCache = field(default_factory=ProcessCache)
    #: Customer records read from Splynx, kept a few minutes (their partner decides which
    #: settings apply; their status and e-mail matter to automatic payments): see
    #: :func:`splynx_ippay.services.customers.customer`.
    customers: TTLCache = field(default_factory=lambda: TTLCache(300.0, max_entries=50000))
    today: Callable[[], datetime.date] = datetime.date.today
    #: Local time (autopay schedules fire at a time of day).
    now: Callable[[], datetime.datetime] = datetime.datetime.now

    @property
    def engine(self):
        return self.sessions.kw["bind"]


class _Session(requests.Session):
    """A ``requests`` session that reads the proxy and CA-bundle environment once per origin,
    and sends the add-on's own requests straight to its adapter (:meth:`request`).

    With ``trust_env`` (the default) requests searches ``os.environ`` for proxies and
    ``no_proxy`` on every request; in the charge worker that was a fifth of its CPU
    (docs/performance.md). A process's environment does not change while it runs, so each
    origin's answer is kept. A session told not to trust the environment behaves as
    requests does.
    """

    def __init__(self):
        super().__init__()
        self._environment = {}

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        if not self.trust_env or proxies:  # nothing to keep
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc, stream, verify, cert)
        settings = self._environment.get(key)
        if settings is None:
            settings = super().merge_environment_settings(url, {}, stream, verify, cert)
            self._environment[key] = settings
        return dict(settings, proxies=dict(settings["proxies"]))

    def request(self, method, url, params=None, data=None, headers=None, json=None,
                timeout=None, allow_redirects=True, stream=False, **other):
        """Send one request. The add-on's own (no redirects followed, no cookies, auth or
        hooks: the API clients and the gateway transport) go straight to the adapter,
        skipping what requests does around it for features they never use: about a third
        of requests' work per call in the charge worker (docs/performance.md). The request
        on the wire, the answer and the exceptions are requests' own
        (tests/unit/test_http_session.py); anything else takes requests' own way."""
        if allow_redirects or other or self.cookies or self.auth or self.hooks["response"]:
            return super().request(method, url, params=params, data=data, headers=headers,
                                   json=json, timeout=timeout, allow_redirects=allow_redirects,
                                   stream=stream, **other)
        prepared = requests.PreparedRequest()
        prepared.prepare(method=method.upper(), url=url, params=params or {}, data=data or {},
                         json=json,
                         headers=merge_setting(headers, self.headers,
                                               dict_class=CaseInsensitiveDict))
        settings = self.merge_environment_settings(prepared.url, {}, stream, None, None)
        response = self.get_adapter(prepared.url).send(
            prepared, stream=stream, timeout=timeout, verify=settings["verify"],
            cert=settings["cert"], proxies=settings["proxies"])
        if not stream:
            response.content  # noqa: B018 - read now, so the connection goes back to the pool
        return response


def http_session(pool_size):
    """A pooled ``requests`` session that identifies the add-on; it never retries by itself."""
    session = _Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=pool_size,
                                            max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = SOFTWARE
    return session


def build_context(settings, *, engine=None, pool_size=32, today: Optional[Callable] = None,
                  now: Optional[Callable] = None):
    """Wire the database and both clients from validated bootstrap ``settings``.

    ``pool_size`` bounds the HTTP connections kept per host (web workers and the charge
    worker need more than the CLI).
    """
    engine = engine or make_engine(settings["DATABASE_URL"])
    sessions = make_session_factory(engine)
    splynx = SplynxClient(
        settings["SPLYNX_URL"], settings["SPLYNX_API_KEY"], settings["SPLYNX_API_SECRET"],
        session=http_session(pool_size), read_timeout=settings["SPLYNX_TIMEOUT"],
        nonce_dir=settings["SPLYNX_NONCE_DIR"])
    extra = {k: v for k, v in (("today", today), ("now", now)) if v is not None}
    secret = settings.get("WEB_SECRET_KEY") or ""
    if not secret:
        log.warning("[web] secret_key is not set: a random one is used, so direct pay links "
                    "and open payment forms stop working when this process restarts and "
                    "are not shared with other processes")
        secret = secrets.token_hex(32)
    return Context(settings=settings, sessions=sessions, splynx=splynx, secret=secret.encode(),
                   module_settings=ModuleSettingsStore(splynx, sessions),
                   gateways=GatewayDirectory(settings, http_session(pool_size)), **extra)


def session_checker(settings):
    """A Splynx client only for asking who owns a browser session: its own short timeouts,
    so that a slow Splynx holds a page for seconds (``[splynx] session_timeout``)."""
    timeout = settings["SPLYNX_SESSION_TIMEOUT"]
    return SplynxClient(settings["SPLYNX_URL"], settings["SPLYNX_API_KEY"],
                        settings["SPLYNX_API_SECRET"], session=http_session(16),
                        connect_timeout=min(3.0, timeout), read_timeout=timeout)
