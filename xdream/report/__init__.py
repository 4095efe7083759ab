"""``xdream report RUN_DIR``: self-contained HTML pages of runs.

- :mod:`.writer`        writes the page of the run's recorded kind; ``--watch``
- :mod:`.html`          what every page shares: frame, style, tables, embedded images
- :mod:`.evolution`     an evolution run's page: one thread, or a session of several
- :mod:`.gradient`, :mod:`.compare`, :mod:`.characterise`   the page of each other run kind
"""

from xdream.report.html import REPORT
from xdream.report.writer import watch, write_report

__all__ = ["REPORT", "watch", "write_report"]
