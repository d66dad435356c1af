"""The whole world on loopback, as on a Splynx host: nginx in front, the Splynx emulator
behind ``/``, the add-on (gunicorn) behind ``/ippay/``, and the IPpay simulator.

Used by ``make demo`` (``python -m sandbox.stack``) and by the end-to-end tests.
"""

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
# The package's locations (included in the Splynx server block) and its http-level part
# (the limit_req zone those locations use).
NGINX_SNIPPET = ROOT / "etc" / "splynx-ippay" / "nginx-location.conf"
NGINX_HTTP_CONF = ROOT / "etc" / "nginx" / "conf.d" / "splynx-ippay.conf"
#: Where the package looks for Splynx's local add-on CLI (the demo puts the stand-in there).
SPLYNX_ADDON_CLI = Path("/var/www/splynx/system/script/addon")

NGINX_CONF = """\
{user}
worker_processes 1;
error_log {state}/nginx-error.log warn;
pid {state}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log {state}/nginx-access.log;
    client_body_temp_path {state}/nginx-tmp/body;
    proxy_temp_path {state}/nginx-tmp/proxy;
    fastcgi_temp_path {state}/nginx-tmp/fastcgi;
    uwsgi_temp_path {state}/nginx-tmp/uwsgi;
    scgi_temp_path {state}/nginx-tmp/scgi;
    types {{ text/html html; text/css css; application/javascript js; }}
    include {http_conf};
    upstream splynx {{ server 127.0.0.1:{splynx_port}; keepalive 16; }}
    server {{
        listen 127.0.0.1:{port};
        server_name localhost;
        location / {{
            proxy_pass http://splynx;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
        include {state}/splynx-ippay.conf;
    }}
}}
"""


def free_port():
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url, timeout=30.0, process=None, verify=True):
    """Poll ``url`` until it answers at all; fail early if ``process`` died. ``verify``:
    as requests takes it (a CA file for a server with its own certificate)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        try:
            requests.get(url, timeout=2, verify=verify)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


class Stack:
    """Start and stop the four processes; ``front`` is the shared origin's URL."""

    def __init__(self, state_dir, port=None, splynx_port=None, ippay_port=None, addon_port=None,
                 workers=2, python=sys.executable, extra_env=None, addon_cli=None,
                 mail_port=None):
        self.state = Path(state_dir).resolve()
        # Where the add-on CLI stand-in is installed: under the state directory unless told
        # (the demo, as root, puts it where the package looks: SPLYNX_ADDON_CLI).
        self.addon_cli = Path(addon_cli) if addon_cli else (
            self.state / "splynx" / "system" / "script" / "addon")
        self.port = port or free_port()
        self.splynx_port = splynx_port or free_port()
        self.ippay_port = ippay_port or free_port()
        self.addon_port = addon_port or free_port()
        #: A mail catcher (aiosmtpd writing a Maildir) the add-on's e-mails go to, if set.
        self.mail_port = mail_port
        self.workers = workers
        self.python = python
        self.extra_env = extra_env or {}
        self.processes = []

    @property
    def front(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def splynx_url(self):
        return f"http://127.0.0.1:{self.splynx_port}"

    @property
    def ippay_url(self):
        return f"http://127.0.0.1:{self.ippay_port}"

    @property
    def mail_dir(self):
        """The Maildir the mail catcher writes each e-mail to (``new/``, one file each)."""
        return self.state / "mail"

    @property
    def database_url(self):
        return f"sqlite:///{self.state}/splynx-ippay.db"

    def addon_env(self):
        """The environment the add-on's processes run with (settings by variable)."""
        env = dict(os.environ)
        env.update({
            "SPLYNX_IPPAY_CONFIG": str(self.state / "config.ini"),
            "SPLYNX_IPPAY_SPLYNX_URL": self.splynx_url,
            "SPLYNX_IPPAY_SPLYNX_API_KEY": env.get("SPLYNX_SANDBOX_API_KEY", "sandbox-key"),
            "SPLYNX_IPPAY_SPLYNX_API_SECRET": env.get("SPLYNX_SANDBOX_API_SECRET",
                                                      "sandbox-secret"),
            "SPLYNX_IPPAY_IPPAY_URL": f"{self.ippay_url}/ippay",
            "SPLYNX_IPPAY_IPPAY_TERMINAL_ID": "TESTTERMINAL",
            # The simulator is local: a short read timeout lets a worker killed in the demo
            # settle its charges in flight (ENQ after the timeout) within seconds, not a minute.
            "SPLYNX_IPPAY_IPPAY_READ_TIMEOUT": "10",
            "SPLYNX_IPPAY_DATABASE_URL": self.database_url,
            "SPLYNX_IPPAY_WEB_SECRET_KEY": "demo-secret-key-not-for-production",
            "SPLYNX_IPPAY_SPLYNX_ADDON_CLI": str(self.addon_cli),
            "PYTHONPATH": str(ROOT),
        })
        if self.mail_port:
            env.update({"SPLYNX_IPPAY_MAIL_HOST": "127.0.0.1",
                        "SPLYNX_IPPAY_MAIL_PORT": str(self.mail_port)})
        env.update(self.extra_env)
        return env

    def _spawn(self, name, argv, env=None):
        log = open(self.state / f"{name}.log", "ab")
        process = subprocess.Popen(argv, cwd=ROOT, env=env or self.addon_env(), stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append((name, process))
        return process

    def _cli(self, *args):
        subprocess.run([self.python, "-m", "splynx_ippay.cli", *args], cwd=ROOT,
                       env=self.addon_env(), check=True, stdout=subprocess.DEVNULL)

    def _write_nginx_conf(self):
        (self.state / "nginx-tmp").mkdir(exist_ok=True)
        snippet = NGINX_SNIPPET.read_text().replace(
            "http://unix:/run/splynx-ippay/web.sock", f"http://127.0.0.1:{self.addon_port}")
        (self.state / "splynx-ippay.conf").write_text(snippet)
        user = "user root;" if os.geteuid() == 0 else ""
        conf = NGINX_CONF.format(user=user, state=self.state, port=self.port,
                                 splynx_port=self.splynx_port, http_conf=NGINX_HTTP_CONF)
        (self.state / "nginx.conf").write_text(conf)

    def start_sandboxes(self):
        """Start the emulator and the simulator, migrate the database and register."""
        self.state.mkdir(parents=True, exist_ok=True)
        (self.state / "config.ini").touch()
        splynx = self._spawn("splynx", [self.python, "-m", "sandbox.splynx",
                                        "--port", str(self.splynx_port)])
        ippay = self._spawn("ippay", [self.python, "-m", "sandbox.ippay",
                                      "--port", str(self.ippay_port)])
        wait_for(f"{self.splynx_url}/api/2.0/admin/api/check", process=splynx)
        wait_for(f"{self.ippay_url}/_sim/health", process=ippay)
        if self.mail_port:
            self._spawn("mail", [self.python, "-m", "aiosmtpd", "-n", "-l",
                                 f"127.0.0.1:{self.mail_port}", "-c", "aiosmtpd.handlers.Mailbox",
                                 str(self.mail_dir)])
        self.install_addon_cli()
        self._cli("db", "upgrade")
        self._cli("register")

    def seed_collections(self):
        """The demo's automatic payments: a schedule on the due date at 06:00, the staff
        summary to the ISP's billing address, links in e-mails to this origin."""
        import json

        from splynx_ippay.splynx import SplynxClient

        env = self.addon_env()
        client = SplynxClient(self.splynx_url, env["SPLYNX_IPPAY_SPLYNX_API_KEY"],
                              env["SPLYNX_IPPAY_SPLYNX_API_SECRET"])
        client.put_module_config("splynx_ippay_addon", {
            "autopay_schedules": json.dumps([{
                "id": "due-date", "name": "On the due date", "trigger": "due_day",
                "at": "06:00", "mode": "due", "statuses": ["active"]}]),
            "staff_emails": "billing@sandbox-isp.example", "public_url": self.front})

    def install_addon_cli(self):
        """Install the add-on CLI stand-in at :attr:`addon_cli`, pointed at this stack's
        emulator, with the registration sub-commands on (sandbox/splynx/README.md)."""
        from sandbox.splynx.addon_cli import install

        return Path(install(str(self.addon_cli), self.splynx_url))

    def gunicorn(self):
        """The gunicorn beside this stack's Python."""
        return shutil.which("gunicorn", path=str(Path(self.python).parent)) or "gunicorn"

    def start_nginx(self):
        """Start nginx with the configuration written in the state directory."""
        nginx = self._spawn("nginx", ["nginx", "-p", str(self.state), "-c",
                                      str(self.state / "nginx.conf"), "-g", "daemon off;"])
        wait_for(f"{self.front}/portal/login", process=nginx)

    def start(self):
        """Start everything, seeded, and wait until the front answers."""
        self.start_sandboxes()
        addon = self._spawn("addon", [self.gunicorn(), "--workers", str(self.workers),
                                      "--threads", "4", "--bind", f"127.0.0.1:{self.addon_port}",
                                      "splynx_ippay.wsgi:app"])
        wait_for(f"http://127.0.0.1:{self.addon_port}/ippay/static/ippay.css", process=addon)
        self.start_worker()
        self._write_nginx_conf()
        self.start_nginx()
        return self

    def start_worker(self):
        """The charge worker (docs/staff.md); ``worker.sh`` in the state directory restarts it
        (e.g. after killing it mid-run to watch it resume)."""
        import shlex

        argv = [self.python, "-m", "splynx_ippay.cli", "worker", "--retry-after", "2"]
        env = {k: v for k, v in self.addon_env().items() if k.startswith("SPLYNX_IPPAY_")
               or k == "PYTHONPATH"}
        script = self.state / "worker.sh"
        script.write_text("#!/bin/sh\n# Restart the demo's charge worker.\ncd " + shlex.quote(str(ROOT))
                          + "\nexec env " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
                          + " " + " ".join(shlex.quote(a) for a in argv)
                          + " >> " + shlex.quote(str(self.state / "worker.log")) + " 2>&1\n")
        script.chmod(0o755)
        self.worker = self._spawn("worker", argv)
        return self.worker

    def stop(self):
        """Stop every process this stack started."""
        for _name, process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for _name, process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        self.processes.clear()

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()


BANNER = """
splynx-ippay demo is running. Open the Splynx portal and admin through the shared origin:

  Customer portal   {front}/portal/      logins: alice / alice-pass, bob / bob-pass, carol / carol-pass
  Admin pages       {front}/admin/       login:  admin / admin-pass
  The add-on        {front}/ippay/cards  (Finance → Credit card in the portal)
  Staff pages       {front}/ippay/admin/ (Finance → Invoices → Charge; Modules list → Edit)
  Charge worker     pid {worker_pid}; after `kill -9 {worker_pid}` restart it with {state}/worker.sh

  Splynx emulator   {splynx}   API key sandbox-key, secret sandbox-secret
  IPpay simulator   {ippay}/ippay   terminal TESTTERMINAL
  Splynx add-on CLI {addon_cli}   (the sandbox's stand-in)
  E-mails sent      {mail}/new/ (one file each; SMTP catcher on 127.0.0.1:{mail_port})
  Database          {database}   ({fresh})
  Logs              {state}/*.log

Automatic payments: one schedule (on the due date at 06:00; staff page "Automatic
payments"), retries of soft declines at 06:00, the staff summary to billing@sandbox-isp.example.

Test cards: 4111111111111111 (Visa), 5111111111111118 (Mastercard), 378282246310005 (Amex),
any future expiry, any CVV but 000 (the issuer refuses it: 806). Amounts approve or decline
by their cents as on IPpay's test gateway (e.g. .00 approves, .05 declines); an expired card
is declined 054.  Press Ctrl-C to stop.
"""


def main():
    parser = argparse.ArgumentParser(description="Run the splynx-ippay demo on loopback.")
    parser.add_argument("--state", default=str(ROOT / ".demo"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("DEMO_PORT", 8000)))
    parser.add_argument("--addon-cli", default=os.environ.get("DEMO_ADDON_CLI"),
                        help="where to install the add-on CLI stand-in (default: "
                        f"{SPLYNX_ADDON_CLI} as root, else under the state directory)")
    parser.add_argument("--keep", action="store_true",
                        default=os.environ.get("DEMO_KEEP") == "1",
                        help="keep the add-on's database and logs from the last run (the "
                        "emulated Splynx starts from its seed whatever this says)")
    args = parser.parse_args()
    state = Path(args.state)
    if state.exists() and not args.keep:
        shutil.rmtree(state)
    addon_cli = args.addon_cli or (SPLYNX_ADDON_CLI if os.geteuid() == 0 else None)
    stack = Stack(state, port=args.port, splynx_port=args.port + 1, ippay_port=args.port + 2,
                  addon_port=args.port + 3, addon_cli=addon_cli, mail_port=args.port + 4)
    with stack:
        stack.seed_collections()
        print(BANNER.format(front=stack.front, splynx=stack.splynx_url, ippay=stack.ippay_url,
                            database=stack.database_url, state=stack.state,
                            addon_cli=stack.addon_cli, mail=stack.mail_dir,
                            mail_port=stack.mail_port, worker_pid=stack.worker.pid,
                            fresh="kept from the last run: DEMO_KEEP=1" if args.keep else
                            "new: the demo starts afresh; DEMO_KEEP=1 make demo keeps it"),
              flush=True)
        # Blocked only now: the children must not inherit a blocked mask.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        signal.sigwait({signal.SIGINT, signal.SIGTERM})


if __name__ == "__main__":
    main()
