"""``python -m bench`` (``make bench``): every benchmark, each against its same-run baseline."""

import os
import sys

from bench import decode, e2e, ingest, processor, restore_churn, scaling
from bench.broker import BOOTSTRAP_VARIABLE, kafka
from bench.report import emit


def main() -> int:
    emit("meetings-pipeline benchmarks (ratios are the figures to compare across machines)")
    emit()
    decode.run()
    # One broker serves every benchmark, as one cluster serves the pipeline for months: the
    # end-to-end run comes last, when the broker's JVM has compiled its hot paths (on a broker
    # started for it alone, the JIT compiler took most of a core during the measurement).
    with kafka() as bootstrap:
        given = os.environ.get(BOOTSTRAP_VARIABLE)
        os.environ[BOOTSTRAP_VARIABLE] = bootstrap
        try:
            emit()
            ingest.run()
            emit()
            processor.run()
            emit()
            restore_churn.run()
            emit()
            e2e.run()
            emit()
            scaling.run()
        finally:
            if given is None:
                del os.environ[BOOTSTRAP_VARIABLE]
    return 0


if __name__ == "__main__":
    sys.exit(main())
