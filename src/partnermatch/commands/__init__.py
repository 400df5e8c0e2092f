"""The `partnermatch` commands, one module per area; `cli.py` finds them through entry points."""
