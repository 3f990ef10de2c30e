"""``harness audit``: grading someone else's inspection proxy against the lab's hostile sites.

    sites.py    the sites of one audit (hostile certificates under <case>.sites.lab.test, a CRL), served
    drive.py    the client: each site through the audited proxy, TLS versions, the result
    verdict.py  pure: what the client saw -> blocked / passed-through / re-signed, and the grade

It sits below ``lab`` (it starts the mock server as the lab does) and above ``reports``
(:mod:`harness.reports.audit` renders its result).
"""
