"""One cell of the matrix: a client in a scenario, run once and judged."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.matrix.serverview import grades, saw_interception
from harness.model.records import ProxyRecord, ServerRecord
from harness.model.scenarios import Scenario
from harness.model.verdict import Verdict


@dataclass
class CellResult:
    """One cell of the matrix: a client in a scenario, judged."""

    scenario: Scenario
    client: str
    verdict: Verdict
    lane: int
    seconds: float
    output: str
    proxy_records: list[ProxyRecord] = field(default_factory=list)
    server_records: list[ServerRecord] = field(default_factory=list)
    secret: str = ""
    # "reference" for attended/beam, else the policy a client definition claims.
    client_policy: str = "reference"
    # How the client was run, to rerun it exactly (harness.reports.rerun): its argv, the
    # environment it got on top of the harness's, its standard input (None: empty), and the
    # command that ran it on another machine of the lab (docker exec CONTAINER), if any.
    command: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)  # what the client's command adds to the environment
    stdin: str | None = None  # what it read on standard input (a pinned-warn client's answer)
    exec_prefix: tuple[str, ...] = ()  # what put it on its machine (docker exec ...)

    @property
    def passed(self) -> bool:
        return self.verdict.passed

    @property
    def server_saw_interception(self) -> str:
        """``yes``/``no``/``-``: whether the mock server suspected interception (:mod:`harness.matrix.serverview`)."""
        return saw_interception(self.server_records)

    @property
    def server_grade(self) -> str:
        """The A/B/C/F grade of the ClientHellos the server got (through inspection: the proxy's)."""
        return grades(self.server_records)

    def to_dict(self) -> dict:
        o = self.verdict.observation
        return {
            "scenario": self.scenario.name,
            "scenario_detail": {"network": self.scenario.network, "policy": self.scenario.policy,
                                "trust": self.scenario.trust, "description": self.scenario.description},
            "client": self.client,
            "client_policy": self.client_policy,
            "command": list(self.command),
            "env": dict(self.env),
            "stdin": self.stdin,
            "exec_prefix": list(self.exec_prefix),
            "expected": self.verdict.expected,
            "observed": o.outcome,
            "verdict": self.verdict.label,
            "reasons": list(self.verdict.reasons),
            "issuer_seen": o.issuer_seen,
            "pin_match": o.pin_match,
            "server_saw_interception": self.server_saw_interception,
            "server_grade": self.server_grade,
            # JSON has lists, not tuples: the document reads back equal to itself.
            "observation": {k: list(v) if isinstance(v, tuple) else v for k, v in o.__dict__.items()},
            "lane": self.lane,
            "seconds": round(self.seconds, 3),
            "output": self.output,
            "proxy_records": self.proxy_records,
            "server_records": self.server_records,
        }
