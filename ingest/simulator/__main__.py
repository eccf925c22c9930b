"""``python -m ingest.simulator``: the same as ``meetings-simulate``."""

import sys

from ingest.simulator.cli import main

sys.exit(main())
