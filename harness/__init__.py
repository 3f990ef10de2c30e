"""A lab that reproduces enterprise TLS inspection against pinned ScreenMeet clients.

The packages, lowest first; a package imports only those above it in this list::

    errors.py   every error a person sees, and what a client meets on the wire
    model/      the data model and pure decisions: vocabularies, values, pins, policy,
                scenarios, vendor profiles, client definitions, journal records, the verdict
    pki/        certificate authorities, leaves, hostile certificates, the lab's PKI files
    net/        addresses and ports, the journals and their admin endpoint
    server/     the mock ScreenMeet server (HTTPS + WebSocket)
    proxy/      the inspection proxy: mitmproxy plus the lab's addon
    clients/    the reference clients (attended, Beam), probe, in-process and swarm runners
    lab/        bringing a lab up and down: LabOptions -> open_lab() -> LabInfo; local,
                compose, the transparent gateway, images
    matrix/     running clients through scenarios on a lab and judging each cell
    audit/      grading someone else's inspection proxy against the lab's hostile sites
    reports/    terminal table, JSON, JUnit XML, HTML
    cli/        the ``harness`` command;  plugin.py: the pytest plugin (``pytest11``)
"""

# The one place the version is written: pyproject.toml reads it ([tool.setuptools.dynamic]).
__version__ = "0.1.0"
