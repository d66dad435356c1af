"""The add-on's HTTP session keeps each origin's environment settings (context._Session): it
must answer exactly what requests itself would, proxies, no_proxy and CA bundle included."""

import pytest
import requests

from splynx_ippay.context import http_session

URLS = ("https://gateway.example:8443/ippay", "http://127.0.0.1:5/api", "https://splynx.isp/api")


@pytest.mark.parametrize("environment", [
    {},
    {"HTTPS_PROXY": "http://proxy.isp:3128", "NO_PROXY": "127.0.0.1,splynx.isp"},
    {"HTTP_PROXY": "http://proxy.isp:3128", "REQUESTS_CA_BUNDLE": "/etc/ssl/isp.pem"},
    {"CURL_CA_BUNDLE": "/etc/ssl/curl.pem", "ALL_PROXY": "socks5://proxy.isp:1080"},
])
@pytest.mark.parametrize("trust_env", [True, False])
@pytest.mark.parametrize("verify", [True, None, False, "/etc/ssl/own.pem"])
def test_the_kept_environment_is_what_requests_reads(monkeypatch, environment, trust_env, verify):
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE",
                 "CURL_CA_BUNDLE", "https_proxy", "http_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    ours, theirs = http_session(2), requests.Session()
    for session in (ours, theirs):
        session.trust_env = trust_env
        session.verify = "/etc/ssl/session.pem"
    for url in URLS:
        for _ in range(2):  # the second answer comes from what was kept
            assert ours.merge_environment_settings(url, {}, True, verify, None) == \
                theirs.merge_environment_settings(url, {}, True, verify, None)
        extra = {"https": "http://other:3128"}
        assert ours.merge_environment_settings(url, dict(extra), False, verify, None) == \
            theirs.merge_environment_settings(url, dict(extra), False, verify, None)
