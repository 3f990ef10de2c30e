"""How a client's own repository tests its pinning against the lab (shown verbatim in the README).

Installing the lab (`pip install /path/to/tls-inspection-lab` or from its git
URL) registers the pytest plugin: the lab starts once per session (once for
all pytest-xdist workers) and every run is judged from the proxy's and the
server's journals plus the client's exit code.
"""

import pytest

from harness.model.clientdefs import define_client
from harness.plugin import assert_outcome

# How to run the client, and the policy it claims: "pinned-strict" must refuse
# TLS inspection (like Beam), connect where nothing is decrypted, and fail hard
# on a certificate it does not trust.
MY_AGENT = define_client(
    "my-agent",
    policy="pinned-strict",
    url="https://beam.screenmeet.com/",
    command=["curl", "-sS", "-o", "/dev/null", "--max-time", "10", "--cacert", "{trust}",
             "--pinnedpubkey", "{pins_curl}", "-H", "Authorization: Bearer {secret}", "{network}", "{url}"],
    proxy=["--proxy", "{proxy_url}"],                     # "{network}" behind a proxy
    direct=["--connect-to", "{host}:{port}:{connect_to}"],  # "{network}" without one
    exit_codes={0: "connected", 90: "refused", 60: "tls-error", 35: "tls-error", 7: "network-error"},
)


@pytest.mark.parametrize("scenario", ["direct", "tunnel-only", "inspected-continue",
                                      "inspected-untrusted-ca", "exception-wildcard", "exception-partial"])
def test_my_agent(run_client, scenario):
    assert_outcome(run_client(MY_AGENT, scenario))


def test_my_agent_never_shows_its_token_to_the_inspection_proxy(run_client):
    cell = run_client(MY_AGENT, "inspected-continue")
    assert_outcome(cell)  # refused: the proxy forged a certificate and read nothing
    assert cell.verdict.observation.credentials_at_proxy == ()
