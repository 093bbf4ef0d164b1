"""Values the usage package and its modules share (a leaf module: it imports nothing)."""

#: the database file commands use when none is given
DEFAULT_DB = "logferry.duckdb"
