"""Running clients through scenarios on a lab and judging every cell.

* :mod:`harness.matrix.execute` – running one client once (reference in-process, or any command)
* :mod:`harness.matrix.worker`  – the client worker inside a compose client container
* :mod:`harness.matrix.remote`  – sending cells to the workers (the ``docker exec`` machines)
* :mod:`harness.matrix.cell`    – :class:`CellResult`, a judged cell
* :mod:`harness.matrix.runner`  – :class:`MatrixRunner`: cells on a running lab, one lane each
* :mod:`harness.matrix.vendors` – judging a cell under a vendor profile
* :mod:`harness.matrix.session` – :func:`run_matrix`: labs for options, the matrix on each
"""
