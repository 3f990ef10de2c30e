"""How the lab names certificates to people: common names, or the whole DN where there is none."""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID


def common_name(name: x509.Name) -> str | None:
    """The first common name of ``name`` (a subject or an issuer), or None where it has none."""
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else None


def display_name(name: x509.Name) -> str:
    """``name``'s common name, else its whole DN in RFC 4514 form (a CA may have no CN)."""
    return common_name(name) or name.rfc4514_string()
