"""The client's address, for the login lockout (django-axes) and the rate limits
(django-ratelimit): both settings name `client_ip`."""

from __future__ import annotations

import ipaddress

from django.conf import settings


def client_ip(request) -> str:
    """REMOTE_ADDR, or behind TRUSTED_PROXY_COUNT proxies (the ingress: 1), the address the
    outermost of them saw: that many entries from the right of X-Forwarded-For.

    Each proxy appends the address it received the request from, so a client can put
    anything at the left of the header, never at the right. A header shorter than the
    count, or not an address there, means the request did not come through the proxies:
    REMOTE_ADDR then.
    """
    count = settings.TRUSTED_PROXY_COUNT
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    if count and len(forwarded) >= count:
        try:
            return str(ipaddress.ip_address(forwarded[-count]))
        except ValueError:
            pass
    return request.META.get("REMOTE_ADDR", "")
