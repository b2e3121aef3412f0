"""The PBX side of the monitor: HTTP client with token manager, Call Control WebSocket."""
