"""The lake's round as a Spark application, for ``spark-submit`` on a cluster (docs/scale.md).

    spark-submit --master spark://HOST:7077 --deploy-mode client \\
        "$(python -c 'import origin.lake.spark_job as m; print(m.__file__)')" \\
        --lake /shared/lake --config site.toml [--reward click=1]

It runs ``LakeRounds.round`` with a ``SparkEngine`` on the session ``spark-submit`` made (its
master, executors and memory): the same SQL text as DuckDB, over the same segments, leaving the
same aggregate state in ``LAKE/_aggregates`` (the state does not record the engine, so a later
``edgepick sync`` with DuckDB continues from it incrementally). The lake's directory must be one
the driver and the executors see under the same path (a shared filesystem). The executors run
SQL only (no Python UDFs): only the driver needs edgepick installed. Prints the round's summary
as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spark_job.py")
    parser.add_argument("--lake", required=True, help="the lake directory (shared filesystem)")
    parser.add_argument("--config", required=True, help="the site config (slots' widths)")
    parser.add_argument("--reward", default="click=1")
    parser.add_argument("--click-window", type=int, default=30, help="minutes")
    parser.add_argument("--conversion-window", type=int, default=24, help="hours")
    parser.add_argument("--master", default="", help="only outside spark-submit (local[2])")
    args = parser.parse_args(argv)

    from compile.site import compile_site, load_toml
    from origin.lake.engines import SparkEngine
    from origin.lake.rounds import LakeRounds
    from origin.lake.segments import Lake
    from origin.learn import widths
    from origin.training import Reward, Windows

    site = compile_site(load_toml(Path(args.config)), None, args.config)
    engine = SparkEngine(master=args.master)
    try:
        windows = Windows(args.click_window * 60_000, args.conversion_window * 3_600_000)
        found = LakeRounds(Lake(args.lake), engine).round(
            widths(site), windows, Reward.parse(args.reward)
        )
    finally:
        engine.stop()
    summary = {
        "rows": found.rows,
        "policy_draws": found.learnable_rows,
        "recomputed": found.recomputed,
        "files_read": found.files_read,
        "arms": len(found.learnable.arms),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
