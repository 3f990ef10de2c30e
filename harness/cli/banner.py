"""What ``harness up`` prints: where everything of the running lab is, and commands to try."""

from __future__ import annotations

from pathlib import Path

from harness.lab.info import LabInfo


def describe_lab(info: LabInfo) -> str:
    """The human summary printed by ``harness up``."""
    pki = info.pki
    lane0 = {policy: urls[0] for policy, urls in info.proxies.items()}
    width = max(len(p) for p in lane0)
    lines = [
        f"TLS-inspection lab is up ({info.backend}, {info.lanes} lane(s)). Stop it with Ctrl-C or 'harness down'.",
        f"  inspection CA     CN={info.org_issuer_cn}  ({pki['org_ca']})",
        *([f"  vendor profile    {info.vendor} (fixtures/vendors.toml)"] if info.vendor else []),
        f"  trust bundles     public only: {pki['trust_public']}",
        f"                    public + org CA: {pki['trust_public_org']}",
        f"  pins              {pki['pins_file']}",
        "  proxies (lane 0)",
        *[f"    {policy.ljust(width)}  {url}" for policy, url in lane0.items()],
        f"  server (direct)   {info.server_connect[0]}  (SNI/Host must be a ScreenMeet name)",
        f"  journals          proxy {info.proxy_admin}/journal   server {info.server_admin}/journal",
        *([f"  corp shell        docker exec -it {info.machines.corp['beam'][-1][:12]} sh   (a machine on the corp network)"]
          if info.backend == "compose" else []),
        "  try" + (" (inside a corp container)" if info.backend == "compose" else ""),
        f"    curl --proxy {lane0.get('inspect', '')} --cacert {pki['trust_public_org']} -v https://api.screenmeet.com/",
        f"    harness beam --proxy {lane0.get('inspect', '')} --trust {pki['trust_public_org']} --pins {pki['pins_file']} --once",
        f"    harness attended --proxy {lane0.get('exception-wildcard', '')} --trust {pki['trust_public_org']} --pins {pki['pins_file']}",
        *_transparent_lines(info),
        f"  written to        {Path(info.state_dir) / 'lab.json'}",
    ]
    return "\n".join(lines)


def _transparent_lines(info: LabInfo) -> list[str]:
    """How to run a client behind the transparent gateway, if the lab has one."""
    t = info.transparent
    if t is None or not t.gateways:
        return []
    policy = "inspect" if "inspect" in t.gateways else next(iter(t.gateways))
    where = (f"sudo ip netns exec {t.namespace}" if info.backend == "local"
             else f"docker exec -u lab {info.machines.gateway['beam'][-1][:12]}")
    return [f"  transparent       no proxy; gateway address for {policy}: {t.gateways[policy][0]} (all in lab.json)",
            f"    {where} harness beam --no-proxy --connect-to {t.gateways[policy][0]} "
            f"--trust {info.pki['trust_public_org']} --pins {info.pki['pins_file']} --once"]
