"""``python -m bench.peers``: the processor against its peers, on ``KAFKA_BOOTSTRAP_SERVERS`` or
a broker started for the run."""

import sys

from bench.peers import compare

if __name__ == "__main__":
    compare.run()
    sys.exit(0)
