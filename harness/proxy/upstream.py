"""Checking an upstream certificate before the ClientHello is answered.

mitmproxy decides pass-through (``ignore_connection``) when the ClientHello
arrives, before it has met the server; a product whose action for untrusted
certificates is *pass-through* (or *allow*) must know the verdict by then, so
the proxy verifies the upstream first, as those products do.  One TLS
handshake per (address, SNI), no application byte, cached for the proxy's life.
"""

from __future__ import annotations

import asyncio
import os
import ssl


class UpstreamChecker:
    """``await check(address, sni)`` -> why the upstream's certificate is not trusted, or None
    (trusted, or unreachable: then there is no certificate to judge)."""

    def __init__(self, cafile: str | None, *, timeout: float = 5.0) -> None:
        self.cafile = cafile
        self.timeout = timeout
        self._verdicts: dict[tuple, str | None] = {}

    def _context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.cafile) if self.cafile else ssl.create_default_context()
        ctx.set_ciphers("DEFAULT:@SECLEVEL=2")  # the proxy's own bar: no SHA-1, no RSA under 2048 bits
        return ctx

    async def check(self, address: tuple[str, int], sni: str | None) -> str | None:
        key = (address, sni)
        if key not in self._verdicts:
            self._verdicts[key] = await self._verify(address, sni)
        return self._verdicts[key]

    async def _verify(self, address: tuple[str, int], sni: str | None) -> str | None:
        host, port = address
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, ssl=self._context(), server_hostname=sni or host),
                self.timeout)
        except ssl.SSLCertVerificationError as e:
            return f"certificate verify failed: {e.verify_message}"
        except ssl.SSLError as e:
            return f"TLS handshake failed: {e.reason or e}"
        except (OSError, asyncio.TimeoutError):
            return None  # not a certificate verdict: mitmproxy meets the same error and reports it
        writer.close()
        return None


def system_trust_bundle() -> str | None:
    """The system's CA bundle file (what OpenSSL and curl trust here), or None if it has none.

    ``--upstream live`` verifies real servers against it, as a corporate proxy verifies
    against its platform's store; mitmproxy's own default would be certifi's bundle.
    """
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and os.path.isfile(candidate):
            return candidate
    return None
