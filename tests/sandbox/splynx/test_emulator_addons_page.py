"""The emulator's Config → Integrations → Add-ons page with stand-in apt commands (the real
apt install through this page is exercised by tests/package)."""

import sys

import pytest

from sandbox.serve import BackgroundServer
from sandbox.splynx import create_app


def _printing(text, status=0):
    return [sys.executable, "-c", f"import sys; sys.stdout.write({text!r}); sys.exit({status})"]


@pytest.fixture
def emulator(tmp_path):
    marker = tmp_path / "installed"
    commands = {
        "search": _printing("splynx-ippay - IPpay card payments add-on for Splynx\n"
                            "splynx-other - Another add-on\nnot-splynx - ignored\n"),
        "policy": _printing("splynx-ippay:\n  Installed: (none)\n  Candidate: 0.1.0\n"
                            "splynx-other:\n  Installed: 1.0\n  Candidate: 1.1\n"),
        "installed": _printing("splynx-other\t1.0\tii \n"),
        "install": [sys.executable, "-c",
                    "import os, sys; open(sys.argv[1], 'w').write(sys.argv[2] + ' ' + "
                    "os.environ['DEBIAN_FRONTEND']); print('Setting up', sys.argv[2])",
                    str(marker)],
    }
    with BackgroundServer(create_app({"apt_commands": commands})) as server:
        server.marker = marker
        yield server


def _admin(url):
    import requests

    session = requests.Session()
    session.post(f"{url}/admin/login", data={"login": "admin", "password": "admin-pass"},
                 timeout=10)
    return session


def test_lists_splynx_packages_with_version_and_state(emulator):
    page = _admin(emulator.url).get(f"{emulator.url}/admin/config/integrations/addons",
                                    timeout=10).text
    assert "IPpay card payments add-on for Splynx" in page and "not-splynx" not in page
    assert "Not installed" in page and "Update available" in page
    assert 'href="/admin/config/integrations/addons?install=splynx-ippay"' in page


def test_install_asks_to_confirm_then_runs_apt_and_shows_the_log(emulator):
    admin = _admin(emulator.url)
    confirm = admin.get(f"{emulator.url}/admin/config/integrations/addons",
                        params={"install": "splynx-ippay"}, timeout=10).text
    assert "OK, confirm" in confirm and not emulator.marker.exists()
    done = admin.post(f"{emulator.url}/admin/config/integrations/addons",
                      data={"package": "splynx-ippay", "confirm": "1"}, timeout=30).text
    assert "Setting up splynx-ippay" in done and "done" in done
    assert emulator.marker.read_text() == "splynx-ippay noninteractive"


def test_refuses_anonymous_users_and_odd_names(emulator):
    import requests

    anonymous = requests.get(f"{emulator.url}/admin/config/integrations/addons", timeout=10,
                             allow_redirects=False)
    assert anonymous.status_code == 302 and "/admin/login" in anonymous.headers["Location"]
    admin = _admin(emulator.url)
    odd = admin.post(f"{emulator.url}/admin/config/integrations/addons",
                     data={"package": "nginx; rm -rf /", "confirm": "1"}, timeout=10)
    assert odd.status_code == 400 and not emulator.marker.exists()
