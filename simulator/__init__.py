"""The 3CX V20 simulator: a fake PBX speaking the real Call Control and XAPI protocols."""
