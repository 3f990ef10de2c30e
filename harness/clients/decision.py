"""What a pinned client does with a finished handshake.  Pure functions, no I/O.

The inputs are the facts of the handshake (chain trusted? pin matched? who
issued the leaf?); the outputs are the decision and the exact words shown.
"""

from __future__ import annotations

from dataclasses import dataclass

EXCEPTION_FIX = "*.screenmeet.com"

WARNING_TEMPLATE = (
    "WARNING: The connection to the support server may not be secure because of an SSL certificate "
    "mismatch. If you are connected via a VPN, your traffic might be monitored. "
    "Certificate Issuer: CN={issuer}. Are you sure you wish to continue?"
)

ON_WARNING_CHOICES = ("ask", "continue", "abort")


def attended_warning(issuer_cn: str) -> str:
    """The attended client's warning, verbatim from the design, naming the issuer's CN."""
    return WARNING_TEMPLATE.format(issuer=issuer_cn)


def beam_refusal(host: str, issuer_cn: str) -> str:
    """Beam's refusal: names the host, the issuer and the fix."""
    return (
        f"Beam refused to connect to {host}: the server's certificate was issued by CN={issuer_cn}, "
        f"which does not match ScreenMeet's pinned keys, so this network is inspecting TLS. "
        f"No credentials were sent. Ask your IT team to add a TLS inspection exception for {EXCEPTION_FIX}."
    )


@dataclass(frozen=True)
class WarningDecision:
    proceed: bool
    how: str  # "continue" | "abort" | "declined" | "no-tty"


def decide_on_warning(mode: str, *, is_tty: bool, answer: str | None = None) -> WarningDecision:
    """Decide whether the attended client proceeds past the warning.

    ``ask`` on a TTY uses ``answer`` (what the person typed; only y/yes proceeds);
    without a TTY nobody can answer, so it aborts.
    """
    if mode == "continue":
        return WarningDecision(True, "continue")
    if mode == "abort":
        return WarningDecision(False, "abort")
    if not is_tty or answer is None:
        return WarningDecision(False, "no-tty")
    yes = answer.strip().lower() in ("y", "yes")
    return WarningDecision(yes, "continue" if yes else "declined")


NO_TTY_SENTENCE = (
    "Not continuing: --on-warning ask needs a person to answer at a terminal, and standard input is not one, "
    "so nobody can answer; pass --on-warning continue or --on-warning abort to decide without a terminal."
)


def decision_message(decision: WarningDecision) -> str:
    """What the attended client says after the warning: continuing, or why not (nobody could answer)."""
    if decision.proceed:
        return "Continuing; this session is NOT secure."
    if decision.how == "no-tty":
        return NO_TTY_SENTENCE
    return "Not continuing."


def backoff_delays(retries: int, *, base: float, cap: float, rand) -> list[float]:
    """Capped exponential backoff with "equal jitter": each delay in [d/2, d], d = min(cap, base*2^n)."""
    delays = []
    for attempt in range(retries):
        # 2.0 ** 1024 overflows a float: past 2 ** 64 every delay is the cap anyway.
        d = min(cap, base * (2.0 ** min(attempt, 64)))
        delays.append(d / 2 + rand() * d / 2)
    return delays
