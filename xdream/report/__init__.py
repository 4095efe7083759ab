"""``xdream report RUN_DIR``: self-contained HTML pages of runs.

- :mod:`.evolution`     the evolution page, the dispatch by run kind and ``--watch``
- :mod:`.characterise`  the characterisation page
- :mod:`.plots`         matplotlib figures of runs
"""

from xdream.report.evolution import REPORT, watch, write_report

__all__ = ["REPORT", "watch", "write_report"]
