"""``python -m bench`` (``make bench``): every benchmark, each against its same-run baseline."""

import sys

from bench import decode, e2e, ingest, processor
from bench.report import emit


def main() -> int:
    emit("meetings-pipeline benchmarks (ratios are the figures to compare across machines)")
    emit()
    decode.run()
    emit()
    ingest.run()
    emit()
    processor.run()
    emit()
    e2e.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
