"""Judging a cell under a vendor profile (``harness run --vendor NAME`` / ``--all-vendors``).

A lab that emulates a product runs the same scenarios, with two twists:

* a row's expectation follows the vendor's untrusted-upstream action
  (:meth:`harness.model.scenarios.Scenario.for_vendor`, applied by the runner);
* every cell that met a forged certificate must show the vendor's issuer CN
  (in the attended warning, Beam's refusal and the proxy journal): a cell
  that names another issuer fails, with the reason (:func:`judge_vendor`);
* the mock server must have noticed the product: a reference client's cell whose
  requests reached the server through the inspecting proxy, unsuspected, fails, and
  so does one the server suspected without interception
  (:func:`harness.matrix.serverview.interception_reasons`).  The table's ``grade``
  column is the server's grade of the product's upstream ClientHello.

Result rows are named ``<vendor>/<scenario>``.
"""

from __future__ import annotations

from dataclasses import replace

from harness.matrix.cell import CellResult
from harness.matrix.serverview import interception_reasons, upstream_grades
from harness.model.vendors import VendorProfile
from harness.model.verdict import Verdict
from harness.model.vocab import INTERCEPT

WARNED = ("warned-continued", "declined", "blocked")
# Outcomes in which the client completed a handshake with a forged certificate.
SAW_FORGED = (*WARNED, "refused")


def issuer_reasons(cell: CellResult, vendor: VendorProfile) -> list[str]:
    """What in ``cell`` contradicts ``vendor``'s issuer CN (empty when nothing does)."""
    o = cell.verdict.observation
    if o.outcome not in SAW_FORGED or not o.intercepted:
        return []
    want, reasons = vendor.issuing_cn, []
    if o.issuer_seen != want:
        reasons.append(f"the client saw issuer CN={o.issuer_seen}, expected the {vendor.name} issuer CN={want}")
    forged = {r["forged_issuer"] for r in cell.proxy_records if r["action"] == INTERCEPT} - {None}
    if forged and forged != {want}:
        reasons.append(f"the proxy forged with {', '.join(sorted(forged))}, not CN={want}")
    if cell.client == "attended" and o.outcome in WARNED and f"Certificate Issuer: CN={want}." not in cell.output:
        reasons.append(f"the attended warning does not name Certificate Issuer: CN={want}")
    return reasons


def judge_vendor(cell: CellResult, vendor: VendorProfile) -> CellResult:
    """``cell`` renamed ``<vendor>/<scenario>``, failing if it shows another issuer than the vendor's."""
    extra = tuple(issuer_reasons(cell, vendor))
    if cell.client_policy == "reference":  # the server knows the reference clients' own fingerprints
        extra += tuple(interception_reasons(cell.verdict.observation, cell.server_records))
    verdict = cell.verdict
    if extra:
        verdict = Verdict(verdict.expected, verdict.observation, verdict.reasons + extra)
    return replace(cell, scenario=replace(cell.scenario, name=f"{vendor.name}/{cell.scenario.name}"),
                   verdict=verdict)


def product_grades(results: list[CellResult]) -> dict[str, str]:
    """``{vendor: grade}``: the server's grades of each product's upstream ClientHello over a run's
    ``<vendor>/<scenario>`` cells (``A``, ``A/B`` when they differ, ``-`` when none reached the server)."""
    letters: dict[str, set[str]] = {}
    for cell in results:
        vendor = cell.scenario.name.split("/", 1)[0] if "/" in cell.scenario.name else None
        if vendor is not None:
            letters.setdefault(vendor, set()).update(upstream_grades(cell.proxy_records, cell.server_records))
    return {vendor: "/".join(sorted(found)) or "-" for vendor, found in letters.items()}
