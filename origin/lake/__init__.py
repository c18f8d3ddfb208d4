"""The event lake: closed segments of events as Parquet, aggregated by DuckDB or Spark SQL."""
