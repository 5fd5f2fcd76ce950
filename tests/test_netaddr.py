"""Client addresses: X-Forwarded-For is believed only from trusted proxies."""

from __future__ import annotations

from homeport.netaddr import client_address
from homeport.settings import Settings


def test_forwarded_for_is_ignored_without_trusted_proxies() -> None:
    assert client_address("203.0.113.5", "1.2.3.4", Settings()) == "203.0.113.5"


def test_forwarded_for_from_a_trusted_proxy() -> None:
    settings = Settings(trusted_proxies=["10.0.0.0/8"])
    assert client_address("10.0.0.2", "198.51.100.9, 10.0.0.7", settings) == "198.51.100.9"
    # A client cannot spoof its way past: the right-most untrusted hop wins.
    assert client_address("10.0.0.2", "6.6.6.6, 198.51.100.9", settings) == "198.51.100.9"
    assert client_address("203.0.113.5", "198.51.100.9", settings) == "203.0.113.5"
