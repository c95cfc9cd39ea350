"""`python -m biosig.report`: the biosig-report command (biosig.cli.report)."""
from biosig.cli import report

report()
