"""Small network pieces shared by every process: addresses and ports, the journals."""
