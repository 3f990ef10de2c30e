"""The lab's data model and pure decisions: no sockets, no subprocesses."""
