"""Capture and replay of what the monitor receives from the PBX (docs/3cx.md §8).

`recorder.py` is the hook the PBX client and Call Control record through; `session.py` streams a capture
from the running monitor (MonitorService.Capture); `trace.py` is the file format; `anonymize.py` takes
numbers, names and addresses out; `replay.py` feeds a trace through the real call graph.
"""
