"""Which callback URLs are accepted, and which addresses a callback may reach (no I/O)."""

from __future__ import annotations

import http.client
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.callbacks import (
    callback_target,
    is_public_address,
    may_call_address,
    url_problem,
)
from chalicelib.settings import Settings, SettingsError

pytestmark = pytest.mark.unit

BAD_URLS = {
    "port out of range": "http://example.com:99999/hook",
    "port not a number": "http://example.com:80a/hook",
    "port zero": "http://example.com:0/hook",
    "unclosed IPv6 literal": "http://[::1/hook",
    "IPv6 literal that is not one": "http://[fe80::zz]/hook",
    "IPv6 zone": "http://[fe80::1%25eth0]/hook",
    "space in the host": "http://exa mple.com/hook",
    "newline in the path": "http://example.com/ho\nok",
    "tab": "http://example.com/\thook",
    "NUL": "http://example.com/\x00",
    "DEL": "http://example.com/\x7f",
    "lone surrogate in the host": "http://\udcff.example.com/hook",
    "label over 63 characters": f"http://{'a' * 64}.example.com/hook",
    "empty label": "http://a..example.com/hook",
    "non-ASCII that maps to an empty label": "http://\u2488.example.com/hook",
    "backslash in the host": "http://a\\b.example.com/hook",
    "non-ASCII path": "http://example.com/h\u00e9",
    "ftp": "ftp://example.com/hook",
    "no scheme": "example.com/hook",
    "credentials": "https://user:pw@example.com/hook",
    "no host": "http:///hook",
    "too long": "https://example.com/" + "a" * 2048,
}


@pytest.mark.parametrize("case", sorted(BAD_URLS))
def test_a_url_the_sender_could_not_use_is_refused_with_a_reason(case: str) -> None:
    problem = url_problem(BAD_URLS[case])
    assert problem and isinstance(problem, str)


def test_a_good_url_is_taken_apart_as_it_will_be_sent() -> None:
    target = callback_target("https://B\u00fccher.Example.com:8443/hook/v1?x=1#frag")
    assert (target.scheme, target.host, target.port, target.path) == (
        "https", "xn--bcher-kva.example.com", 8443, "/hook/v1?x=1")
    assert target.literal is None
    assert callback_target("http://[2606:4700::1111]/").literal == "2606:4700::1111"
    assert callback_target("http://example.com").port == 80 and url_problem("http://x.io") is None


URLISH = st.one_of(
    st.text(max_size=80),
    st.builds(lambda scheme, host, port, path: f"{scheme}://{host}{port}{path}",
              st.sampled_from(["http", "https", "HTTP", "ftp", ""]),
              st.one_of(st.text(max_size=30), st.from_regex(r"\[[0-9a-fA-F:.%]{0,20}\]?",
                                                              fullmatch=True)),
              st.one_of(st.just(""), st.from_regex(r":[0-9a-z+-]{0,7}", fullmatch=True)),
              st.text(max_size=20)),
)


@given(URLISH)
def test_no_text_makes_the_url_rules_raise_and_an_accepted_url_is_sendable(url: str) -> None:
    problem = url_problem(url)  # a reason or None, never an exception
    if problem is None:
        target = callback_target(url)
        assert target.scheme in ("http", "https") and 0 < target.port < 65536
        # What http.client itself would refuse at delivery time.
        http.client.HTTPConnection(target.host, target.port)._validate_path(target.path)
        target.path.encode("ascii")
        target.host.encode("ascii")


PRIVATE = {
    "IPv4 loopback": "127.0.0.1", "this network": "0.0.0.0", "RFC 1918": "10.1.2.3",
    "RFC 1918 172": "172.16.0.1", "RFC 1918 192": "192.168.1.1", "link-local": "169.254.169.254",
    "shared CGN": "100.64.0.1", "IETF protocol assignments": "192.0.0.9",
    "TEST-NET-1": "192.0.2.1", "6to4 relay anycast": "192.88.99.1",
    "benchmarking": "198.18.0.1", "TEST-NET-3": "203.0.113.9", "IPv4 multicast": "224.0.0.1",
    "reserved": "240.0.0.1", "broadcast": "255.255.255.255",
    "IPv6 loopback": "::1", "IPv6 unspecified": "::",
    "IPv4-mapped loopback": "::ffff:127.0.0.1", "IPv4-mapped private": "::ffff:10.0.0.1",
    "IPv4-compatible loopback": "::127.0.0.1", "IPv4-compatible public": "::8.8.8.8",
    "NAT64 to loopback": "64:ff9b::7f00:1", "NAT64 to private": "64:ff9b::10.0.0.1",
    "NAT64 to metadata": "64:ff9b::169.254.169.254", "NAT64 local-use": "64:ff9b:1::808:808",
    "6to4 of private": "2002:a00:1::1", "6to4 of loopback": "2002:7f00:1::",
    "Teredo": "2001:0:4136:e378:8000:63bf:3fff:fdd2", "IETF IPv6 assignments": "2001:2::1",
    "ORCHIDv2": "2001:20::1", "IPv6 documentation": "2001:db8::1", "documentation 3fff": "3fff::1",
    "discard-only": "100::1", "SRv6 SIDs": "5f00::1", "unique-local": "fd00::1",
    "link-local v6": "fe80::1", "link-local with zone": "fe80::1%eth0",
    "site-local": "fec0::1", "IPv6 multicast": "ff02::1", "global multicast": "ff0e::1",
}
PUBLIC = {
    "IPv4": "8.8.8.8", "IPv4-mapped public": "::ffff:8.8.8.8", "IPv6": "2606:4700::1111",
    "NAT64 to public": "64:ff9b::8.8.8.8", "6to4 of public": "2002:808:808::1",
}


@pytest.mark.parametrize("form", sorted(PRIVATE))
def test_each_non_public_address_form_is_refused(form: str) -> None:
    assert not is_public_address(PRIVATE[form])
    assert not may_call_address(PRIVATE[form])


@pytest.mark.parametrize("form", sorted(PUBLIC))
def test_public_addresses_may_be_called(form: str) -> None:
    assert is_public_address(PUBLIC[form])


def test_allowed_networks_open_only_themselves() -> None:
    allowed = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("fd00:1::/32"))
    assert may_call_address("127.0.0.1", allowed) and may_call_address("127.8.9.10", allowed)
    assert may_call_address("::ffff:127.0.0.1", allowed)  # the same address, mapped
    assert may_call_address("fd00:1::5", allowed)
    for other in ("10.0.0.1", "169.254.169.254", "::1", "fd00:2::1", "64:ff9b::7f00:1"):
        assert not may_call_address(other, allowed), other


def test_callback_allowed_networks_are_read_and_checked_at_load() -> None:
    s = Settings.from_env({"CALLBACK_ALLOWED_NETWORKS": " 127.0.0.0/8 , fd00::/8,10.1.2.3"})
    assert [str(n) for n in s.callback_allowed_networks] == ["127.0.0.0/8", "fd00::/8",
                                                             "10.1.2.3/32"]
    assert Settings.from_env({}).callback_allowed_networks == ()
    for bad in ("127.0.0.1/33", "10.0.0.1/8", "localhost", "::1/129"):
        with pytest.raises(SettingsError, match="CALLBACK_ALLOWED_NETWORKS"):
            Settings.from_env({"CALLBACK_ALLOWED_NETWORKS": bad})


@pytest.mark.parametrize("timeout", ["8s", "0s"])
def test_a_callback_timeout_that_does_not_fit_the_function_is_refused(timeout: str) -> None:
    with pytest.raises(SettingsError, match="CALLBACK_TIMEOUT"):
        Settings.from_env({"CALLBACK_TIMEOUT": timeout})
    assert Settings.from_env({"CALLBACK_TIMEOUT": "7s"}).callback_timeout_s == 7
