"""Where a connection goes, as a firewall's decryption rule sees it: pure, from the journal
record's CONNECT host or original destination and the proxy's configuration.

The exception decision itself is :meth:`harness.model.policy.Policy.decide` with
:func:`harness.model.policy.match_subjects` (which keeps this address only for
products that match destinations, a vendor profile's ``exception_match``).
"""

from __future__ import annotations

from collections.abc import Mapping

from harness.proxy.config import Listener, ProxyConfig


def destination_of(record: Mapping | None, config: ProxyConfig | None, listener: Listener) -> str | None:
    """The address the connection goes to: a transparent connection's original destination, or
    where the lab sends the CONNECT host (``upstream_for``; a name when DNS would resolve it,
    None when the host is not the lab's)."""
    if record is None:
        return None
    if record.get("original_dst"):
        return record["original_dst"].rsplit(":", 1)[0]
    if not record.get("connect_host") or config is None:
        return None
    host, _, port = record["connect_host"].rpartition(":")
    try:
        target = config.upstream_for(host, int(port), listener.lane, listener.policy.upstream)
    except (KeyError, ValueError):
        return None
    return target[0] if target else None
