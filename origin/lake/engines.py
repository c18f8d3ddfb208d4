"""Where the aggregation SQL runs: DuckDB embedded (the default), or Spark SQL.

Each engine exposes the lake's segment files as the view ``events`` and the slots' widths as the
view ``widths(key, width)``, runs ``origin.lake.sql.aggregation_sql`` unchanged, and returns the
result as rows (dicts). DuckDB needs nothing installed beyond the ``origin`` extra and runs in
this process. Spark (the ``spark`` extra, PyPI ``pyspark``) runs in local mode by default
(``master="local[2]"``); on a cluster, submit the same job with ``spark-submit`` (docs/scale.md).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from origin.lake.schema import SCHEMA
from origin.settings import LAKE_ENGINE_ENV as ENGINE_ENV

SPARK_MASTER_ENV = "EDGEPICK_SPARK_MASTER"
DUCKDB_MACROS = "CREATE OR REPLACE MACRO try_element_at(l, i) AS list_extract(l, i)"


class Engine(Protocol):
    name: str

    def run(
        self, sql: str, files: Sequence[str], widths: Sequence[tuple[str, int]]
    ) -> list[dict[str, Any]]: ...


class DuckDBEngine:
    """DuckDB in this process. ``memory_limit`` bounds its buffers (joins, the window function,
    aggregation); beyond it, it spills to ``temp_directory`` (default: a directory under the
    system's temporary directory)."""

    name = "duckdb"

    def __init__(
        self,
        threads: int | None = None,
        memory_limit: str = "500MB",
        temp_directory: str | None = None,
    ) -> None:
        self.threads = threads
        self.memory_limit = memory_limit
        self.temp_directory = temp_directory or str(Path(tempfile.gettempdir()) / "edgepick-duckdb")

    def connect(self, files: Sequence[str]) -> Any:
        """A DuckDB connection with this engine's settings and the view ``events`` over
        ``files`` (the caller closes it)."""
        import duckdb

        db = duckdb.connect()
        db.execute(f"SET memory_limit = '{self.memory_limit}'")
        db.execute(f"SET temp_directory = '{self.temp_directory}'")
        db.execute("SET preserve_insertion_order = false")
        if self.threads:
            db.execute(f"SET threads = {int(self.threads)}")
        db.execute(DUCKDB_MACROS)
        if files:
            listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
            db.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet([{listed}])")
        else:
            db.register("no_events", SCHEMA.empty_table())
            db.execute("CREATE VIEW events AS SELECT * FROM no_events")
        return db

    def run(
        self, sql: str, files: Sequence[str], widths: Sequence[tuple[str, int]]
    ) -> list[dict[str, Any]]:
        db = self.connect(files)
        try:
            table = pa.table(
                {"key": [k for k, _ in widths], "width": [w for _, w in widths]},
                schema=pa.schema([("key", pa.string()), ("width", pa.int32())]),
            )
            db.register("widths", table)
            result: pa.Table = db.sql(sql).to_arrow_table()
            rows: list[dict[str, Any]] = result.to_pylist()
            return rows
        finally:
            db.close()


class SparkEngine:
    """Spark SQL through ``pyspark``: the session given, else one on ``master`` (default:
    ``EDGEPICK_SPARK_MASTER``, else ``local[2]``; ``""`` leaves it to ``spark-submit``)."""

    name = "spark"

    def __init__(self, master: str | None = None, session: Any = None) -> None:
        self.master = master if master is not None else os.environ.get(SPARK_MASTER_ENV, "local[2]")
        self._session = session

    def session(self) -> Any:
        if self._session is None:
            from pyspark.sql import SparkSession

            builder = SparkSession.builder.appName("edgepick-lake")
            if self.master:
                builder = builder.master(self.master)
            if self.master.startswith("local"):  # one machine: small, quiet, loopback only
                builder = (
                    builder.config("spark.sql.shuffle.partitions", "4")
                    .config("spark.ui.enabled", "false")
                    .config("spark.ui.showConsoleProgress", "false")
                    .config("spark.driver.bindAddress", "127.0.0.1")
                    .config("spark.driver.host", "127.0.0.1")
                )
            self._session = builder.getOrCreate()
            self._session.sparkContext.setLogLevel("ERROR")
        return self._session

    def run(
        self, sql: str, files: Sequence[str], widths: Sequence[tuple[str, int]]
    ) -> list[dict[str, Any]]:
        from pyspark.sql.types import IntegerType, StringType, StructField, StructType

        spark = self.session()
        if files:
            spark.read.parquet(*files).createOrReplaceTempView("events")
        else:
            spark.createDataFrame([], _spark_schema()).createOrReplaceTempView("events")
        shape = StructType(
            [StructField("key", StringType(), False), StructField("width", IntegerType(), False)]
        )
        spark.createDataFrame(list(widths), shape).createOrReplaceTempView("widths")
        return [row.asDict() for row in spark.sql(sql).collect()]

    def stop(self) -> None:
        if self._session is not None:
            self._session.stop()
            self._session = None


def _spark_schema() -> Any:
    from pyspark.sql.types import (
        ArrayType,
        DoubleType,
        IntegerType,
        LongType,
        StringType,
        StructField,
        StructType,
    )

    kinds: Mapping[pa.DataType, Any] = {
        pa.string(): StringType(),
        pa.int64(): LongType(),
        pa.int32(): IntegerType(),
        pa.float64(): DoubleType(),
        pa.list_(pa.float64()): ArrayType(DoubleType()),
    }
    return StructType([StructField(f.name, kinds[f.type], True) for f in SCHEMA])


def engine(name: str | None = None) -> Engine:
    """An engine by name: ``duckdb`` (the default) or ``spark`` (local mode); ``None``: the
    one ``EDGEPICK_LAKE_ENGINE`` names, else DuckDB."""
    source = ""
    if name is None:
        name = os.environ.get(ENGINE_ENV, "") or "duckdb"
        source = f" (from {ENGINE_ENV})"
    if name == "duckdb":
        return DuckDBEngine()
    if name == "spark":
        return SparkEngine()
    raise ValueError(f"lake engine: {name!r} is not one of duckdb, spark{source}")
