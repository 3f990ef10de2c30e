"""What the mock server saw of a cell: did it suspect interception, and how did it grade the TLS.

Pure functions over a cell's server records (``interception`` and ``tls`` of each
request, :mod:`harness.server.detect` and :mod:`harness.model.tlsgrade`) and its
:class:`harness.model.verdict.Observation`:

* :func:`saw_interception` – ``yes`` when the server suspected any request, ``no``
  when it saw requests and suspected none, ``-`` when nothing reached it;
* :func:`expected_interception` – what it must say: ``yes`` for a cell whose
  client reached the server through a connection the proxy intercepted (the
  attended client after continuing, an unpinned client), ``no`` for one that
  reached it only directly, tunnelled or excepted; ``None`` when nothing reached it;
* :func:`grades` – the grades of the ClientHellos that carried the requests: through
  inspection, the proxy's upstream ClientHello, the product's grade.
"""

from __future__ import annotations

from harness.model.records import ProxyRecord, ServerRecord
from harness.model.verdict import Observation
from harness.model.vocab import INTERCEPT


def _requests(records: list[ServerRecord]) -> list:
    return [r for r in records if r["kind"] == "http"]


def saw_interception(records: list[ServerRecord]) -> str:
    """``yes``, ``no`` or ``-`` (no request reached the server)."""
    requests = _requests(records)
    if not requests:
        return "-"
    return "yes" if any(r.get("interception", {}).get("suspected") for r in requests) else "no"


def expected_interception(o: Observation) -> str | None:
    """What :func:`saw_interception` must say for a cell observed as ``o`` (None: nothing to see)."""
    if not o.server_requests:
        return None
    if o.intercepted and o.server_requests_once_inspected:
        return "yes"
    return "no" if not o.intercepted else None  # mixed without inspected requests: nothing to assert


def interception_reasons(o: Observation, records: list[ServerRecord]) -> list[str]:
    """Why the server's view contradicts the proxy journal (empty when it agrees)."""
    want, got = expected_interception(o), saw_interception(records)
    if want is None or want == got:
        return []
    if want == "yes":
        return [f"the server did not notice interception although {o.server_requests_once_inspected} request(s) "
                "reached it through the inspecting proxy"]
    why = "; ".join(sorted({x for r in _requests(records) for x in r.get("interception", {}).get("reasons", [])}))
    return [f"the server suspected interception of a connection the proxy did not intercept ({why})"]


def grades(records: list[ServerRecord]) -> str:
    """The distinct grades of the ClientHellos behind the requests, best first (``A``, ``A/B``), or ``-``."""
    letters = {r["tls"]["grade"]["letter"] for r in _requests(records) if r.get("tls")}
    return "/".join(sorted(letters)) or "-"


def upstream_grades(proxy_records: list[ProxyRecord], server_records: list[ServerRecord]) -> set[str]:
    """The grades of the proxy's own upstream ClientHellos: those of the requests that came over
    connections the proxy intercepted (tied by address: the proxy's ``upstream_local``, the server's
    ``client``)."""
    via = {a for r in proxy_records if r["kind"] == "connection" and r["action"] == INTERCEPT
           for a in r.get("upstream_local", ())}
    return {r["tls"]["grade"]["letter"] for r in _requests(server_records) if r.get("tls") and r["client"] in via}
