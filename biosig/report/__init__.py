"""Reports with plots, read back from what a run or a sweep wrote: report.png and a
self-contained report.html. run.py: a run directory's panels; sweep.py: a sweep's objective
against each swept flag and its ranked table; figure.py: the panels' layout and the files
(matplotlib, imported inside the functions: it is optional); best.py: the best point's lines
from best.json. `python -m biosig.report DIR` runs the command (biosig/cli/report.py).

May import: leaves.
"""
