"""piuparts (Debian's installation tester) on the package: install and purge in a fresh
chroot with nothing left behind, then the upgrade from the previous release. piuparts'
chroots have no init (its policy-rc.d refuses to start services), so these runs take the
maintainer scripts' path without systemd: registration tried once, bounded, a warning.

The chroot's base is debootstrapped once and kept in /var/cache/splynx-ippay-tests; the
packages piuparts installs in it come from the mirror this machine's apt uses (apt's own
cache of downloads is shared with the chroot)."""

import re

import pytest

from container import CACHE, SUITE, mirror_sources, skip_reason
from debpkg import PREVIOUS_COMMIT, make_repo, run

pytestmark = [pytest.mark.package,
              pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")]


def piuparts(*args):
    """Run piuparts on the configured mirror; its log is returned (and shown on failure)."""
    sources = mirror_sources()
    mirror = next(uri for uri, suite, _ in sources if suite == SUITE)
    extra = [f"--extra-repo=deb {uri} {suite} {' '.join(components)}"
             for uri, suite, components in sources if suite != SUITE]
    base = CACHE / f"piuparts-{SUITE}.tgz"
    chroot = ["-b", str(base)] if base.exists() else ["-s", str(base)]
    return run(["piuparts", "-d", SUITE, "-m", mirror, *extra, *chroot, *args], timeout=1500)


@pytest.mark.timeout(1500)
def test_piuparts_install_and_purge(built):
    log = piuparts("--no-upgrade-test", str(built["deb"])).stdout
    assert "PASS: Installation and purging test." in log, log[-4000:]
    # No systemd in the chroot: registration ran once, could not reach Splynx, and said so.
    assert "could not be registered with Splynx now" in log


@pytest.mark.timeout(1500)
def test_piuparts_upgrade_from_the_previous_release(built):
    if built["previous"] is None:
        pytest.skip(f"not a git checkout: the previous release is built from {PREVIOUS_COMMIT}")
    previous = make_repo(built["workdir"] / "piuparts-previous", [built["previous"]])
    run(["chmod", "-R", "a+rX", str(previous)])
    log = piuparts("--no-install-purge-test", f"--bindmount={previous}",
                   f"--extra-repo=deb [trusted=yes] file://{previous} ./",
                   str(built["deb"])).stdout
    assert re.search(r"PASS: Installation, upgrade and purging tests", log), log[-4000:]
