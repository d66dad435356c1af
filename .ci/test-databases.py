"""Run a command with a MariaDB and a PostgreSQL the test suites can use, then stop whatever
this script started.

    python .ci/test-databases.py -- COMMAND ARGS...

The suites create throwaway databases through two admin URLs, IPPAY_TEST_MARIADB_URL and
IPPAY_TEST_POSTGRESQL_URL (tests/conftest.py). For each engine, in order:

1. the URL already in the environment, if it answers;
2. the server on loopback at its usual port (root@127.0.0.1:3306 without a password,
   postgres@127.0.0.1:5432 trusted), if it answers;
3. otherwise a private instance for this run: the Debian package is installed when missing
   (mariadb-server, postgresql), the server gets its own data directory under
   build/test-databases, a free port on 127.0.0.1 and its own socket directory, runs as
   its package's unprivileged user (mysql, postgres), and is stopped and deleted at the end.

IPPAY_TEST_PRIVATE_DATABASES=1 skips steps 1 and 2 (to try step 3 where servers run).
Needs root only for step 3. Python packages: PyMySQL and psycopg2 (in the project's .venv).
"""

import atexit
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
BASE = Path(os.environ.get("IPPAY_TEST_DATABASES_DIR", ROOT / "build" / "test-databases"))
DEFAULTS = {"mariadb": "mysql+pymysql://root@127.0.0.1:3306",
            "postgresql": "postgresql+psycopg2://postgres@127.0.0.1:5432"}
VARIABLES = {"mariadb": "IPPAY_TEST_MARIADB_URL", "postgresql": "IPPAY_TEST_POSTGRESQL_URL"}
PACKAGES = {"mariadb": "mariadb-server", "postgresql": "postgresql"}


def say(message):
    print(f"test-databases: {message}", file=sys.stderr, flush=True)


def answers(kind, url):
    """Can the suites log in as the admin of ``url``?"""
    parts = urlsplit(url)
    try:
        if kind == "mariadb":
            import pymysql

            pymysql.connect(host=parts.hostname, port=parts.port or 3306,
                            user=parts.username or "root", password=parts.password or "",
                            connect_timeout=3).close()
        else:
            import psycopg2

            psycopg2.connect(host=parts.hostname, port=parts.port or 5432,
                             user=parts.username or "postgres", password=parts.password or "",
                             dbname="postgres", connect_timeout=3).close()
        return True
    except Exception:  # noqa: BLE001 - any failure means "not usable"
        return False


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def apt_install(package):
    if subprocess.run(["dpkg", "-s", package], stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL).returncode == 0:
        return
    say(f"installing the Debian package {package}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "-q", "update"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "-q", "-y", "install", "--no-install-recommends", package],
                   check=True, env=env, stdout=subprocess.DEVNULL)


def data_dir(kind, user, keep_until_exit=True):
    """An empty directory for ``kind`` that ``user`` owns and can reach: under the build
    tree when every parent lets others through, otherwise under /var/tmp. Returns
    ``(directory, what to delete)``, deleted at exit unless ``keep_until_exit`` is False
    (the caller deletes it)."""
    BASE.mkdir(parents=True, exist_ok=True)
    reachable = all(os.stat(p).st_mode & 0o001 for p in [BASE, *BASE.parents])
    parent = BASE if reachable else Path(tempfile.mkdtemp(prefix="splynx-ippay-db-",
                                                          dir="/var/tmp"))
    os.chmod(parent, 0o755)
    directory = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=parent))
    removable = directory if reachable else parent
    if keep_until_exit:
        atexit.register(shutil.rmtree, removable, True)
    account = pwd.getpwnam(user)
    os.chown(directory, account.pw_uid, account.pw_gid)
    os.chmod(directory, 0o700)
    return directory, removable


def as_user(user, argv, **kwargs):
    return subprocess.run(["runuser", "-u", user, "--", *argv], check=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def wait_until_answers(kind, url, process=None, log=None, timeout=60):
    deadline = time.monotonic() + timeout
    while not answers(kind, url):
        if process is not None and process.poll() is not None or time.monotonic() > deadline:
            detail = Path(log).read_text(errors="replace")[-3000:] if log else ""
            raise SystemExit(f"test-databases: the private {kind} did not start:\n{detail}")
        time.sleep(0.2)


def _in(netns, argv):
    """``argv`` run inside the network namespace ``netns`` (None: this one)."""
    return ["ip", "netns", "exec", netns, *argv] if netns else argv


def start_mariadb(host="127.0.0.1", port=None, netns=None, clients="127.0.0.1",
                  options=(), keep_until_exit=True):
    """A private MariaDB on ``host``:``port`` (a free port by default), inside the network
    namespace ``netns`` when given, whose root logs in without a password from ``clients``
    (a MariaDB host pattern such as ``10.1.2.%``). Returns ``(url, process, removable)``:
    the admin URL, the server (stop it with :func:`stop`) and the directory to delete."""
    apt_install(PACKAGES["mariadb"])
    directory, removable = data_dir("mariadb", "mysql", keep_until_exit)
    data, run_dir = directory / "data", directory / "run"
    for path in (data, run_dir):
        path.mkdir()
        shutil.chown(path, "mysql", "mysql")
    as_user("mysql", ["mariadb-install-db", "--no-defaults", f"--datadir={data}",
                      "--auth-root-authentication-method=normal", "--skip-test-db"])
    port = port or free_port()
    log = directory / "server.log"
    process = subprocess.Popen(_in(netns, [
        "runuser", "-u", "mysql", "--", "mariadbd", "--no-defaults", f"--datadir={data}",
        f"--socket={run_dir}/mysqld.sock", f"--pid-file={run_dir}/mysqld.pid",
        f"--port={port}", f"--bind-address={host}", f"--log-error={log}",
        "--innodb-buffer-pool-size=64M", *options]),
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = _mariadb_ready(process, run_dir, log, clients, f"mysql+pymysql://root@{host}:{port}")
    except BaseException:
        stop(process)
        raise
    return url, process, removable


def _mariadb_ready(process, run_dir, log, clients, url):
    # mariadb-install-db made root@localhost; the suites log in over TCP from ``clients``.
    deadline = time.monotonic() + 60
    while not (run_dir / "mysqld.sock").exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("test-databases: mariadbd did not start:\n"
                             + (log.read_text(errors="replace")[-3000:] if log.exists() else ""))
        time.sleep(0.2)
    import pymysql

    for _ in range(100):
        try:
            admin = pymysql.connect(unix_socket=str(run_dir / "mysqld.sock"), user="root")
            break
        except pymysql.err.OperationalError:
            time.sleep(0.2)
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE USER IF NOT EXISTS 'root'@'{clients}'")
        cursor.execute(f"GRANT ALL PRIVILEGES ON *.* TO 'root'@'{clients}' WITH GRANT OPTION")
    admin.close()
    wait_until_answers("mariadb", url, process, log)
    return url


def private_mariadb():
    url, process, _ = start_mariadb()
    atexit.register(stop, process)
    return url


def start_postgresql(host="127.0.0.1", port=None, netns=None, clients="127.0.0.1/32",
                     options=(), keep_until_exit=True):
    """A private PostgreSQL on ``host``:``port`` (a free port by default), inside the
    network namespace ``netns`` when given, trusting the ``postgres`` user from ``clients``
    (an address range); ``options`` are more ``-c name=value`` settings. Returns
    ``(url, process, removable)`` as :func:`start_mariadb` does."""
    apt_install(PACKAGES["postgresql"])
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]
    directory, removable = data_dir("postgresql", "postgres", keep_until_exit)
    data, run_dir = directory / "data", directory / "run"
    for path in (data, run_dir):
        path.mkdir()
        shutil.chown(path, "postgres", "postgres")
    as_user("postgres", [f"{binaries}/initdb", "-D", str(data), "-U", "postgres",
                         "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8"])
    if clients != "127.0.0.1/32":
        with open(data / "pg_hba.conf", "a") as hba:
            hba.write(f"host all all {clients} trust\n")
    port = port or free_port()
    log = directory / "server.log"
    shutil.chown(directory, "postgres", "postgres")
    settings = [f"listen_addresses={host}", "fsync=off", "max_connections=200", *options]
    process = subprocess.Popen(
        _in(netns, ["runuser", "-u", "postgres", "--", f"{binaries}/postgres", "-D", str(data),
                    "-p", str(port), "-k", str(run_dir),
                    *[arg for setting in settings for arg in ("-c", setting)]]),
        stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
    url = f"postgresql+psycopg2://postgres@{host}:{port}"
    try:
        wait_until_answers("postgresql", url, process, log)
    except BaseException:
        stop(process)
        raise
    return url, process, removable


def private_postgresql():
    url, process, _ = start_postgresql()
    atexit.register(stop, process)
    return url


def stop(process):
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def provide(kind):
    """The admin URL for ``kind``: given, on loopback, or a private instance started now
    (always the latter with IPPAY_TEST_PRIVATE_DATABASES=1)."""
    if os.environ.get("IPPAY_TEST_PRIVATE_DATABASES") == "1":
        return private_mariadb() if kind == "mariadb" else private_postgresql()
    given = os.environ.get(VARIABLES[kind])
    if given:
        if answers(kind, given):
            return given
        say(f"{VARIABLES[kind]}={given} does not answer; looking further")
    if answers(kind, DEFAULTS[kind]):
        return DEFAULTS[kind]
    if os.geteuid() != 0:
        raise SystemExit(f"test-databases: no {kind} answers at {DEFAULTS[kind]}, and only "
                         f"root can install and start one; set {VARIABLES[kind]}")
    url = private_mariadb() if kind == "mariadb" else private_postgresql()
    say(f"started a private {kind} for this run: {url}")
    return url


def main(argv):
    if "--" in argv:
        argv = argv[argv.index("--") + 1:]
    if not argv:
        raise SystemExit(__doc__)
    env = dict(os.environ)
    for kind in ("mariadb", "postgresql"):
        env[VARIABLES[kind]] = provide(kind)
    # Our own exit handlers stop the private servers, also when the command is interrupted.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        return subprocess.call(argv, env=env)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
