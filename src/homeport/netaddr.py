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


def client_address(peer: str | None, forwarded_for: str | None, settings: Settings) -> str:
    """Walk `X-Forwarded-For` from the right, skipping trusted proxies, to the first client."""
    address = peer or "unknown"
    if forwarded_for is None or not _is_trusted(address, settings):
        return address
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        address = hop
        if not _is_trusted(hop, settings):
            break
    return address
