"""``python -m tools.simulator``: the same as ``meetings-simulate``."""

import sys

from tools.simulator.cli import main

sys.exit(main())
