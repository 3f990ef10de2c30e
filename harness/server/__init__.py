"""The mock ScreenMeet server (:mod:`harness.server.mock`; ``python -m harness.server``)."""
