"""Network pieces every lab process shares.

* :mod:`harness.net.addresses` – binding, free ports, the per-lane port layout
* :mod:`harness.net.journal`   – the journals (ground truth) and their reader
* :mod:`harness.net.admin`     – the journals' admin endpoint, and the rules that hold it under hostile clients
"""
