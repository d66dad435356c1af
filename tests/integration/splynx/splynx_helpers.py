"""Helpers of the Splynx client's tests against the emulator on loopback."""

import requests

KEY, SECRET = "sandbox-key", "sandbox-secret"


def sandbox_call(emu, path, body=None):
    response = requests.post(emu.url + path, json=body, timeout=5)
    assert response.status_code in (200, 201), response.text
    return response.json()


def api_log(emu, path_regex, method=None):
    params = {"path_regex": path_regex, **({"method": method} if method else {})}
    return requests.get(emu.url + "/_sandbox/requests", params=params, timeout=5).json()


def allow_undocumented(emu):
    """Let the emulator offer the methods the API blueprint does not document."""
    sandbox_call(emu, "/_sandbox/settings", {"undocumented_methods": "allow"})
