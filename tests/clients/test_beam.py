"""harness.clients.beam: the unattended agent retries network errors with backoff, then gives up."""

import socket

from harness.clients import beam
from tests.clients.clienthelpers import run


def test_beam_retries_with_backoff_then_gives_up(pki):
    port = socket.create_server(("127.0.0.1", 0))
    free = port.getsockname()[1]
    port.close()
    got, output = run(beam, pki, free, "--retries", "2", "--backoff-base", "0.01", "--backoff-cap", "0.02")
    assert got == 6
    assert output.count('"event": "retry"') == 2
