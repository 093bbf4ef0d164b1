"""Where the reports read from: the usage database (a DuckDB file) or the usage lake (its
last committed snapshot).  ``logferry serve`` holds one :class:`UsageSource`; the console's
dashboard and ``/api/report`` read through :meth:`UsageSource.dashboard`, the same
:func:`~logferry.usage.dashboard.dashboard_data` that ``report --html`` writes, on the
same connections ``report --db`` and ``report --lake`` open."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def shown(location: str) -> str:
    """``location`` as the console shows it: a URL without user, password, query or
    fragment (``s3://key:secret@bucket/lake?x=y`` -> ``s3://bucket/lake``)."""
    if "://" not in location:
        return location
    scheme, rest = location.split("://", 1)
    rest = rest.split("?", 1)[0].split("#", 1)[0]
    authority, slash, path = rest.partition("/")
    return f"{scheme}://{authority.rpartition('@')[2]}{slash}{path}"


@dataclass
class UsageSource:
    """``kind`` "duckdb" (``location``: the file) or "lake" (``location``: the folder or URL,
    ``catalog``: its catalog, None for the default)."""

    kind: str
    location: str
    catalog: str | None = None
    _lake: Any = field(default=None, repr=False)

    @classmethod
    def duckdb(cls, path: str) -> UsageSource:
        return cls("duckdb", str(path))

    @classmethod
    def lake(cls, location: str, catalog: str | None = None) -> UsageSource:
        """The lake at ``location``, opened now (LogferryError: not there, unreachable, newer)."""
        from ..lake.cli import open_lake

        return cls("lake", str(location), catalog, open_lake(str(location), catalog))

    def describe(self) -> dict[str, Any]:
        """What the console shows: kind, location (no credentials) and, for the lake, the
        snapshot its manifest is at (the last commit a report reads)."""
        d: dict[str, Any] = {"kind": self.kind, "location": shown(self.location)}
        if self.kind == "lake":
            d["catalog"] = None if self.catalog is None else shown(self.catalog)
            snap = self._lake.table("files").current_snapshot()
            d["snapshot_id"] = None if snap is None else snap.snapshot_id
            d["snapshot_at"] = None if snap is None else (
                datetime.fromtimestamp(snap.timestamp_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z")
        return d

    @contextlib.contextmanager
    def connect(self, params: Any = None, *, read_only: bool = False) -> Iterator[Any]:
        """A DuckDB connection with the usage tables: the file (shared with a follower in
        this or another process; ``read_only``: only read, never created), or the lake's
        last snapshot pruned to ``params``' site and time range (``params.span`` then set,
        as ``report --lake`` does)."""
        if self.kind == "lake":
            from ..lake.query import connect_lake
            from .reports import REPORT_MEMORY_LIMIT

            con = connect_lake(self._lake, params, memory_limit=REPORT_MEMORY_LIMIT)
        else:
            from .db import connect, connect_shared

            # (connect_shared: read-only while another process follows)
            con = connect(self.location, read_only=True) if read_only else connect_shared(self.location)
        try:
            yield con
        finally:
            con.close()

    def dashboard(self, filters: Any = None, *, allowed_sites: list[str] | None = None) -> dict[str, Any]:
        """The dashboard's data for ``filters``, scoped to ``allowed_sites`` (a token's)."""
        from .dashboard import Filters, dashboard_data
        from .reports import roomy

        filters = filters or Filters()
        params = self._lake_params(filters, allowed_sites) if self.kind == "lake" else None
        with self.connect(params) as con:
            data = roomy(con, lambda: dashboard_data(con, filters, allowed_sites=allowed_sites, params=params))
            if params is not None and params.site is not None and allowed_sites is None:
                # (pruned to one site: the site choices are every site's, as the database
                # lists them: the sites of the rollups the connection's manifest counts)
                from ..lake.query import counted_sites
                from .dashboard import MAX_SITE_CHOICES

                data["choices"]["sites"] = counted_sites(con, self._lake)[:MAX_SITE_CHOICES]
        return data

    def overview(self, filters: Any = None, *, allowed_sites: list[str] | None = None) -> dict[str, Any]:
        """Every site's traffic in ``filters``' time range from the lake's hourly rollups
        (``report --lake --rollups``): the console's view of every tenant, a few rows per
        site-hour read instead of the requests; ``allowed_sites``: a token's."""
        from ..errors import ConfigError

        if self.kind != "lake":
            raise ConfigError("the overview reads a lake's hourly rollups, not a database")
        from ..lake.rollups import report
        from .reports import Params

        since, until = (filters.since, filters.until) if filters is not None else (None, None)
        return report(self._lake, Params(since=since, until=until), scope=allowed_sites)

    @staticmethod
    def _lake_params(filters: Any, allowed_sites: list[str] | None) -> Any:
        """The lake's scan for the dashboard: the filters' time range, and one site's
        partitions when a scoped token has one site (every row of its site column is in
        them) or an unscoped one asks for one site."""
        from .reports import Params

        one = allowed_sites if allowed_sites is not None else filters.sites
        site = one[0] if one is not None and len(one) == 1 else None
        return Params(since=filters.since, until=filters.until, site=site)
