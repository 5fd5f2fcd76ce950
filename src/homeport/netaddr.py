"""The client's address, believing `X-Forwarded-For` only from configured trusted proxies."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from homeport.settings import Settings


@lru_cache(maxsize=16)
def _networks(
    proxies: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def _is_trusted(address: str, settings: Settings) -> bool:
    if not settings.trusted_proxies:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in _networks(tuple(settings.trusted_proxies)))


def forwarded_https(peer: str | None, forwarded_proto: str | None, settings: Settings) -> bool:
    """Whether a trusted proxy says the client's request came over HTTPS (`X-Forwarded-Proto`),
    when TLS ends at the proxy and the request reaches us over plain HTTP."""
    if forwarded_proto is None or peer is None or not _is_trusted(peer, settings):
        return False
    return forwarded_proto.split(",")[0].strip().lower() == "https"


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


MAX_HOPS = 32
"""Hops examined at most: a chain of trusted proxies is short, a header can be huge."""


def client_address(peer: str | None, forwarded_for: str | None, settings: Settings) -> str:
    """Walk `X-Forwarded-For` from the right, skipping trusted proxies, to the first client.

    A hop that is not an IP address was not written by a proxy we trust (they write the peer
    they saw), so the walk stops there and the last trusted hop stands as the client: garbage
    sent by a client never becomes an address that is stored or rate-limited on."""
    address = peer or "unknown"
    if forwarded_for is None or not _is_trusted(address, settings):
        return address
    hops = [h.strip() for h in forwarded_for.split(",")[-MAX_HOPS:]]
    for hop in reversed(hops):
        if not is_ip(hop):
            break
        address = str(ipaddress.ip_address(hop))
        if not _is_trusted(address, settings):
            break
    return address
