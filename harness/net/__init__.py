"""Network pieces every lab process shares.

* :mod:`harness.net.addresses` – binding, free ports, the per-lane port layout
* :mod:`harness.net.journal`   – the journals (ground truth), their admin endpoint and reader
"""
