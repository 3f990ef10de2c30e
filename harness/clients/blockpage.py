"""Whose answer is it: the ScreenMeet API's, or an inspecting proxy's block page (pure).

On a connection the client found decrypted (no pin matched), the answer to a
request comes from whoever holds the TLS session: usually the server behind
the proxy, but a proxy that met an untrusted upstream certificate answers
itself (a vendor's block page, or mitmproxy's own 502).  The ScreenMeet API
answers in JSON; block pages are HTML.  So an error status with an HTML body
on a decrypted connection is the proxy's answer, and the client says so
instead of blaming the server.
"""

from __future__ import annotations


def is_block_page(status: int, content_type: str | None, *, decrypted: bool) -> bool:
    """An error answer in HTML on a decrypted connection: the inspecting proxy's block page."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return decrypted and status >= 400 and media in ("text/html", "application/xhtml+xml")


def block_page_message(status: int) -> str:
    """How the clients name it (the proxy's answer, not the server's)."""
    return f"the proxy answered with a block page: HTTP {status}"
