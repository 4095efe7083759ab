"""``python -m xdream.cli``: the ``xdream`` command."""

import sys

from xdream.cli.main import main

sys.exit(main())
