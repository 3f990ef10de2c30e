"""The mock ScreenMeet server."""
