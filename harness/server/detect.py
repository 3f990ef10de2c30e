"""Does a request come through an interception product?  A pure decision, as MITMEngine makes it.

Cloudflare's MITMEngine (github.com/cloudflare/mitmengine, after Durumeric et al.,
NDSS 2017) compares the TLS fingerprint of a connection with the one the
browser its User-Agent names would produce, and looks for headers that
interception products add.  :func:`suspect` does the same for the mock server:

* **fingerprint mismatch** – the request's User-Agent names a client family the
  server knows (:class:`KnownClients`, learned at lab start from each client's own
  TLS stack: :mod:`harness.lab.fingerprints`) and the connection's JA4 is none of that
  family's.  JA4, not JA3: it sorts ciphers and extensions, so a client that
  shuffles its extension order (Chrome does) keeps one fingerprint;
* **product header** – the request carries every header a known product adds
  (a vendor profile's ``request_headers`` in ``fixtures/vendors.toml``:
  ``Z-Forwarded-For`` names Zscaler, ``X-BlueCoat-Via`` Blue Coat, ``Via`` with
  ``X-IMForwards`` the Cisco WSA); that also names the product.

A client family the server does not know, with no product header, is not
suspected: the server cannot tell.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field


def client_family(user_agent: str | None) -> str | None:
    """The product token a User-Agent starts with, lower case: ``curl/8.1.2`` -> ``curl``."""
    if not user_agent or not user_agent.strip():
        return None
    return user_agent.strip().split()[0].split("/", 1)[0].lower() or None


@dataclass(frozen=True)
class KnownClients:
    """Which JA4 fingerprints each client family produces: ``{family: {ja4, ...}}``."""

    ja4: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def from_json(cls, text: str) -> KnownClients:
        """``{"curl": ["t13d...", ...], ...}``: the file :mod:`harness.lab.fingerprints` writes."""
        data = json.loads(text)
        if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
            raise ValueError("expected a JSON object of client family -> list of JA4 fingerprints")
        return cls({str(k).lower(): frozenset(map(str, v)) for k, v in data.items()})


@dataclass(frozen=True)
class Interception:
    """The server's verdict on one request: ``{"suspected", "reasons", "product"}`` in the journal."""

    suspected: bool
    reasons: tuple[str, ...] = ()
    product: str | None = None

    def to_dict(self) -> dict:
        return {"suspected": self.suspected, "reasons": list(self.reasons), "product": self.product}


def product_headers(vendors) -> dict[str, tuple[str, ...]]:
    """``{product: (header names, lower case)}`` of the vendor profiles that add headers."""
    return {v.product: tuple(sorted(h.lower() for h in v.request_headers))
            for v in vendors.values() if v.request_headers}


def suspect(*, user_agent: str | None, ja4: str | None, headers: Mapping[str, str],
            known: KnownClients, products: Mapping[str, tuple[str, ...]]) -> Interception:
    """Whether a request with ``headers`` (names lower case), sent by ``user_agent`` over a
    connection whose ClientHello has fingerprint ``ja4``, came through interception."""
    reasons: list[str] = []
    product = None
    family = client_family(user_agent)
    expected = known.ja4.get(family) if family else None
    if expected and ja4 is not None and ja4 not in expected:
        reasons.append(f"the User-Agent names {family}, whose TLS fingerprint is {' or '.join(sorted(expected))}, "
                       f"but the connection's is {ja4}")
    for name, names in sorted(products.items()):
        if names and all(h in headers for h in names):
            reasons.append(f"the request carries {', '.join(names)}, which {name} adds")
            product = product or name
    return Interception(bool(reasons), tuple(reasons), product)
