"""The usage lake: the usage tables as Apache Iceberg tables (extra ``lake``).

``requests``, ``bad_rows`` and ``files`` (the manifest) on a local folder or object store,
partitioned by site and day, in a SQLite catalog beside the data by default; ingest in one
process or on a Dask cluster, reports with the usage database's own SQL in DuckDB over a
partition-pruned scan.  See ``docs/scale.md``.

    tables    the catalog, the table schemas, opening a lake (and refusing a newer one)
    store     the lake as the ingester's store on a worker: rows to Parquet data files
    commit    the one driver's commit: data files, then the manifest (the commit point)
    ingest    planning, the work on Dask or in this process, the commits
    query     a DuckDB connection over the last committed snapshot (report, sql)
    rollups   per site and hour: counts, bytes, a visitor sketch, a latency histogram
    cli       ``--lake`` on ingest/report/sql, ``logferry lake status|compact|expire``
"""
