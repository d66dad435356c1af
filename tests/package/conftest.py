"""Fixtures of the package suite (helpers in debpkg.py): the .deb and the previous version
built once per run into a local apt repository, the Splynx emulator and the IPpay simulator.
Skipped, with the reason, unless root on Debian."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from debpkg import (PACKAGE, ROOT, SOURCES, Emulator, _build_previous, apt_update_local, run,
                    skip_reason)


@pytest.fixture(scope="session")
def built():
    """Build once per run: ``make repo`` (the current .deb, lintian left to its test) and the
    previous version; both go into a local apt repository readable by apt's _apt user."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    workdir = Path(tempfile.mkdtemp(prefix="splynx-ippay-pkg-", dir="/tmp"))
    os.chmod(workdir, 0o755)
    repo = workdir / "repo"
    run(["make", "--no-print-directory", "repo", f"DIST={workdir}/dist",
         f"DEB_BUILD_DIR={workdir}/build", f"REPO={repo}", "LINTIAN=true"], cwd=ROOT)
    current = next((workdir / "dist").glob(f"{PACKAGE}_*_all.deb"))
    changes = next((workdir / "dist").glob(f"{PACKAGE}_*.changes"))
    previous = _build_previous(workdir)
    shutil.copy2(previous, repo)
    packages = subprocess.run(["dpkg-scanpackages", "--multiversion", "."], cwd=repo, check=True,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    (repo / "Packages").write_text(packages.stdout)
    run(["sh", "-c", "gzip -9nc Packages > Packages.gz && apt-ftparchive release . > Release"],
        cwd=repo)
    run(["chmod", "-R", "a+rX", str(workdir)])
    version = run(["dpkg-deb", "-f", str(current), "Version"]).stdout.strip()
    SOURCES.write_text(f"deb [trusted=yes] file:{repo} ./\n")
    try:
        apt_update_local()
        yield {"deb": current, "changes": changes, "previous": previous, "repo": repo,
               "version": version, "workdir": workdir}
    finally:
        SOURCES.unlink(missing_ok=True)
        shutil.rmtree(workdir, ignore_errors=True)
        for listed in Path("/var/lib/apt/lists").glob(f"*{workdir.name}*"):
            listed.unlink()

@pytest.fixture(scope="session")
def emulator():
    emulator = Emulator().start()
    yield emulator
    emulator.stop()

@pytest.fixture(scope="session")
def simulator():
    from sandbox.ippay import create_app
    from sandbox.serve import BackgroundServer

    with BackgroundServer(create_app()) as server:
        yield server
