"""The ``harness`` command line: :mod:`harness.cli.main` dispatches to one module per command
(``up``/``down``, ``run``, ``pki``, ``probe``); :mod:`harness.cli.parser` holds the arguments and
turns them into a :class:`harness.lab.options.LabOptions`."""
