"""The headers an inspection product adds to the requests it decrypts, before they go on to
the server: pure, from a vendor profile's ``request_headers`` (``fixtures/vendors.toml``).

Products announce themselves this way (Blue Coat ``X-BlueCoat-Via``, Zscaler
``Z-Forwarded-For``, Forcepoint ``X-Websense*``, Cisco WSA ``Via`` and
``X-IMForwards``), which is how servers and fingerprinting tools such as
Cloudflare's MITMEngine tell inspected requests apart.
"""

from __future__ import annotations

from collections.abc import Mapping

CLIENT_IP = "{client_ip}"


def added_headers(templates: Mapping[str, str], client_ip: str | None) -> list[tuple[str, str]]:
    """``[(name, value)]`` to add to one decrypted request: each template with ``{client_ip}``
    replaced by the client's address (``unknown`` when the proxy does not know it)."""
    return [(name, value.replace(CLIENT_IP, client_ip or "unknown")) for name, value in templates.items()]


def apply(headers, added: list[tuple[str, str]]) -> None:
    """Add ``added`` to ``headers`` (a mitmproxy ``Headers``, or any mapping): a header the
    client sent already under that name is replaced, as proxies overwrite their own headers
    rather than trust the client's copy, except ``Via``, which each proxy appends to."""
    for name, value in added:
        if name.lower() == "via" and name in headers:
            headers[name] = f"{headers[name]}, {value}"
        else:
            headers[name] = value
