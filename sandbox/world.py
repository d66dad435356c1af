"""The whole world in one process, for tests: the Splynx emulator and the add-on on one
origin (a dispatcher, as nginx is on a Splynx host), the IPpay simulator beside them."""

import os

import requests

from sandbox.serve import BackgroundServer, control_call

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Today:
    """The add-on's idea of today (and now), which a test may move: the context's ``today``
    and, as :attr:`now`, its ``now``."""

    def __init__(self):
        self.moment = None

    def __call__(self):
        import datetime

        return self.moment.date() if self.moment else datetime.date.today()

    def now(self):
        import datetime

        return self.moment or datetime.datetime.now()

    def set(self, day, at=None):
        """Today is ``day`` (a date), at ``at`` (a time, default noon)."""
        import datetime

        self.moment = datetime.datetime.combine(day, at or datetime.time(12, 0))


class World:
    """The emulator and the add-on on one origin (``url``), the simulator beside it."""

    def __init__(self, front_server, sim_server, splynx_app, ctx, config, today):
        self.front = front_server
        self.url = front_server.url
        self.sim = sim_server
        self.splynx_app = splynx_app
        self.ctx = ctx
        self.config = config
        #: Move the add-on's today with ``world.today.set(date)``.
        self.today = today

    def sim_call(self, path, payload=None):
        return control_call(f"{self.sim.url}/_sim/{path}", payload)

    def emu_call(self, path, payload=None):
        return control_call(f"{self.url}/_sandbox/{path}", payload)

    def login(self, login, password=None, place="portal"):
        """A browser-like session logged into the emulator's portal (or admin pages)."""
        session = requests.Session()
        response = session.post(f"{self.url}/{place}/login",
                                data={"login": login, "password": password or f"{login}-pass"},
                                timeout=10)
        assert response.ok and "PHPSESSID" in session.cookies, response.text[:500]
        return session

    def login_admin(self):
        return self.login("admin", place="admin")

    def set_module_settings(self, values):
        """Write module settings straight into Splynx's module config (as an admin editing
        them in Splynx would) and let the add-on's processes see them at once."""
        self.ctx.splynx.put_module_config("splynx_ippay_addon", values)
        self.ctx.module_settings.bump()

    def store(self):
        """The emulator's data, for tests that set up many invoices directly."""
        return self.splynx_app.extensions["splynx_store"]

    def env(self):
        """Environment for a worker or CLI subprocess talking to this world."""
        return {**os.environ, "PYTHONPATH": ROOT, "SPLYNX_IPPAY_CONFIG": "/nonexistent/config.ini",
                "SPLYNX_IPPAY_SPLYNX_URL": self.url, "SPLYNX_IPPAY_SPLYNX_API_KEY": "sandbox-key",
                "SPLYNX_IPPAY_SPLYNX_API_SECRET": "sandbox-secret",
                "SPLYNX_IPPAY_IPPAY_URL": self.sim.url + "/ippay",
                "SPLYNX_IPPAY_IPPAY_READ_TIMEOUT": str(self.config["IPPAY_READ_TIMEOUT"]),
                "SPLYNX_IPPAY_IPPAY_CONNECT_TIMEOUT": "2",
                "SPLYNX_IPPAY_DATABASE_URL": self.config["DATABASE_URL"],
                "SPLYNX_IPPAY_WEB_LOG_LEVEL": "WARNING"}

    def stop(self):
        self.front.stop()
        self.sim.stop()


def build_world(database_url, splynx_config=None, csrf=True, addon_cli=True, **settings):
    """Start simulator, emulator (``splynx_config``: e.g. extra invoices) and add-on, and
    register the add-on; the caller calls ``world.stop()``. ``csrf=False`` spares API-like
    tests the form tokens. ``addon_cli`` puts the stand-in for Splynx's add-on CLI beside
    the emulator, as on a Splynx host (False: Splynx elsewhere, the API alone)."""
    import tempfile
    from sandbox.front import Front
    from sandbox.ippay import create_app as create_sim
    from sandbox.splynx import create_app as create_splynx
    from splynx_ippay import create_app
    from splynx_ippay.config import validate
    from splynx_ippay.context import build_context

    sim = BackgroundServer(create_sim()).start()
    splynx_app = create_splynx(splynx_config or {})
    front = BackgroundServer(Front(splynx_app)).start()
    cli_path = os.path.join(tempfile.mkdtemp(prefix="splynx-addon-cli-"), "addon")
    if addon_cli:
        from sandbox.splynx.addon_cli import install

        install(cli_path, front.url)
    config = validate({
        "SPLYNX_ADDON_CLI": cli_path, "SPLYNX_NONCE_DIR": os.path.dirname(cli_path),
        "SPLYNX_URL": front.url, "SPLYNX_API_KEY": "sandbox-key",
        "SPLYNX_API_SECRET": "sandbox-secret", "IPPAY_URL": sim.url + "/ippay",
        "IPPAY_READ_TIMEOUT": 1.0, "IPPAY_CONNECT_TIMEOUT": 1.0, "SPLYNX_TIMEOUT": 5.0,
        "DATABASE_URL": database_url, "WEB_SECRET_KEY": "test-secret", **settings,
    })
    today = Today()
    ctx = build_context(config, today=today, now=today.now)
    front.app.addon_app = create_app({**config, "WTF_CSRF_ENABLED": csrf}, context=ctx)
    from splynx_ippay.services.registration import register
    from sandbox.splynx.addon_cli import run_in_process
    from splynx_ippay.splynx.addon_cli import AddonCli

    # The stand-in CLI runs in this process (addon_cli.run_in_process): what it answers is
    # the same, and a world is ready in about a second rather than four.
    register(ctx.splynx, AddonCli(cli_path, runner=run_in_process) if addon_cli else None)
    return World(front, sim, splynx_app, ctx, config, today)
