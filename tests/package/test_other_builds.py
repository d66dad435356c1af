"""The same package by the other routes: from a release tarball (``make dist``, no git), and
by stdeb (``setup.py --command-packages=stdeb.command bdist_deb``), which must match the
reference dh build file for file and script for script, and install, serve and purge in a
container of its own."""

import re
import tarfile

import pytest

from container import Container, skip_reason
from debpkg import PACKAGE, build_stdeb, deb_listing, run, ROOT
from test_package import (UNITS, assert_nothing_left, installed_version, preseed,
                          wait_registered, wait_serving, SIMULATOR)

pytestmark = [pytest.mark.package,
              pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")]


def package_names(field):
    return sorted(re.split(r"[\s(|]", item.strip())[0] for item in field.split(",")
                  if item.strip())


@pytest.mark.timeout(900)
def test_a_release_tarball_builds_the_same_package(built, tmp_path):
    run(["make", "--no-print-directory", "dist", f"DIST={tmp_path}/dist",
         f"DEB_BUILD_DIR={tmp_path}/build"], cwd=ROOT)
    tarball = next((tmp_path / "dist").glob(f"{PACKAGE}-*.tar.gz"))
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
        top = {name.split("/")[0] for name in names}
        assert top == {f"{PACKAGE}-{built['version']}"}, top
        assert not [n for n in names if re.search(r"/(\.git|\.venv[^/]*|__pycache__|build|dist)(/|$)", n)]
        assert all(member.uid == 0 and member.gid == 0 for member in archive.getmembers())
        archive.extractall(tmp_path / "unpacked")
    source = tmp_path / "unpacked" / f"{PACKAGE}-{built['version']}"
    assert not (source / ".git").exists()
    run(["make", "--no-print-directory", "deb", f"DIST={tmp_path}/from-tarball",
         f"DEB_BUILD_DIR={tmp_path}/build-from-tarball", "LINTIAN=true"], cwd=source)
    deb = next((tmp_path / "from-tarball").glob(f"{PACKAGE}_*_all.deb"))
    assert deb_listing(deb) == deb_listing(built["deb"])


@pytest.fixture(scope="module")
def stdeb_deb(built):
    return build_stdeb(built["workdir"])


def test_stdeb_builds_the_same_files_scripts_and_units(built, stdeb_deb):
    reference_paths, reference_scripts = deb_listing(built["deb"])
    paths, scripts = deb_listing(stdeb_deb)
    # A native package's changelog is changelog.gz, a non-native one's changelog.Debian.gz.
    rename = {"/usr/share/doc/splynx-ippay/changelog.Debian.gz":
              "/usr/share/doc/splynx-ippay/changelog.gz"}
    assert sorted(rename.get(p, p) for p in paths) == reference_paths
    assert scripts == reference_scripts  # preinst, postinst, prerm, postrm, config, templates,
    # conffiles: byte for byte
    fields = ("Package", "Architecture", "Section", "Depends", "Recommends", "Suggests",
              "Description")
    reference = {f: run(["dpkg-deb", "-f", str(built["deb"]), f]).stdout for f in fields}
    other = {f: run(["dpkg-deb", "-f", str(stdeb_deb), f]).stdout for f in fields}
    for field in ("Depends", "Recommends", "Suggests"):
        assert package_names(other.pop(field)) == package_names(reference.pop(field)), field
    assert other == reference
    version = run(["dpkg-deb", "-f", str(stdeb_deb), "Version"]).stdout.strip()
    assert version == f"{built['version']}-1"  # stdeb makes a 3.0 (quilt) source package


@pytest.mark.timeout(900)
def test_the_stdeb_package_installs_serves_and_purges(stdeb_deb):
    box = Container("splynx-ippay-stdeb")
    try:
        box.boot()
        box.start_emulator()
        box.start_simulator()
        target = box.path(f"/srv/{stdeb_deb.name}")
        target.write_bytes(stdeb_deb.read_bytes())
        before = box.snapshot()
        preseed(box)
        box.apt_get("install", f"/srv/{stdeb_deb.name}")
        assert installed_version(box)
        wait_registered(box)
        for unit in UNITS:
            assert box.is_active(unit) == "active"
        box.python("simulator", SIMULATOR)
        box.systemctl("restart", *UNITS)
        wait_serving(box)
        box.python("pay")
        done = box.apt_get("purge", PACKAGE)
        assert done.stdout.count("splynx-ippay: purging") == 1, done.stdout
        assert not box.python("registered")["registered"]
        target.unlink()
        assert_nothing_left(box, before)
    finally:
        box.shutdown()
