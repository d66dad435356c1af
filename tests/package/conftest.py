"""Fixtures of the package suite: the .debs built once per run into a local apt repository,
and one container booted with systemd (container.py) in which they are installed, upgraded
and purged. Nothing is installed on the machine that runs the tests. Skipped, with the
reason, unless root on Debian with systemd-nspawn and debootstrap (make test-package-deps)."""

import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from container import Container, skip_reason  # noqa: E402
from debpkg import (build_current, build_previous, is_git_checkout, make_repo,  # noqa: E402
                    run)


@pytest.fixture(scope="session")
def built():
    """Build once per run: the current .deb (``make deb``; lintian is its own test) and the
    previous release; both go into a local apt repository."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    workdir = Path(tempfile.mkdtemp(prefix="splynx-ippay-pkg-", dir="/var/tmp"))
    try:
        current, changes = build_current(workdir)
        previous = build_previous(workdir) if is_git_checkout() else None
        repo = make_repo(workdir / "repo", [current] + ([previous] if previous else []))
        version = run(["dpkg-deb", "-f", str(current), "Version"]).stdout.strip()
        yield {"deb": current, "changes": changes, "previous": previous, "repo": repo,
               "version": version, "workdir": workdir}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def box(built):
    """A Debian 12 container booted with systemd, the local repository known to its apt,
    the Splynx emulator and IPpay simulator running in it."""
    container = Container("splynx-ippay-lifecycle")
    try:
        container.boot(repo=built["repo"])
        container.apt_update_local()
        container.start_emulator()
        container.start_simulator()
        yield container
    except BaseException:
        if container.pid:
            print(container.run(["journalctl", "-b", "--no-pager", "-n", "300"],
                                check=False).stdout)
        raise
    finally:
        container.shutdown()
