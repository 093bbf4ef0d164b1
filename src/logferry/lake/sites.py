"""``report --lake --each-site DIR``: the report of every site the lake counts, one
document a site (the HTML dashboard, or the reports' JSON), made on the Dask workers or in
this process.

The driver plans the manifest's data files once, finds the sites (the rollups' counted sites) and the
span every site's report shares (as ``report --lake --site`` gives it), and plans each
site's scan (``query.plan_scan``: the data files pruned to that site).  A worker opens the
plan (``query.open_scan``: DuckDB over those data files and the manifest's) and returns
the document; the driver writes it.  A site whose data files must be
copied through pyiceberg (files with delete files) is made here.  A site's JSON is
``report --lake --site SITE --json``'s but for its generation time; its page is ``--html``'s
titled with the site.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

from .query import LakeScan, open_scan, plan_manifest, plan_scan, sites_and_span
from .tables import Lake


def site_file(site: str, html: bool) -> str:
    """A site's document's file name: the site quoted as the lake's folders quote it (no
    ``/``, no control character; a long one cut, with a digest of the whole), and no dotfile
    (a ``*.json`` glob or ``ls`` skips those): a leading ``.`` quoted (``%2E``: quoting never
    gives it, ``.`` is left as it is), the empty site a digest as a cut long one is."""
    import hashlib

    from .store import site_folder

    name = site_folder(site)
    if not name:
        name = f"~{hashlib.sha256(b'').hexdigest()[:16]}"
    elif name.startswith("."):
        name = "%2E" + name[1:]
    return f"{name}.{'html' if html else 'json'}"


def site_files(sites: list[str], html: bool) -> dict[str, str]:
    """Each site's file name (:func:`site_file`); sites whose names differ only in case
    get a digest each, so that none overwrites another on a file system that ignores case."""
    import hashlib

    names = {s: site_file(s, html) for s in sites}
    seen: dict[str, int] = {}
    for n in names.values():
        seen[n.lower()] = seen.get(n.lower(), 0) + 1
    for s, n in names.items():
        if seen[n.lower()] > 1:
            stem, ext = n.rsplit(".", 1)
            names[s] = f"{stem}~{hashlib.sha256(s.encode('utf-8', 'surrogatepass')).hexdigest()[:16]}.{ext}"
    return names


def each_site(lake: Lake, params: Any, *, html: bool, only: list[str] | None = None, tz: str = "UTC",
              client: Any = None, names: dict[str, str] | None = None) -> Iterator[tuple[str, str]]:
    """(site, its document) for every site the lake counts, as they are made (on the
    Dask ``client``'s workers, or here in site order); ``names`` gets each site's file
    name (:func:`site_files`) before the first."""
    from .ingest import _dask

    lake = lake.reader()
    manifest = plan_manifest(lake)
    sites, span = sites_and_span(lake, params, manifest)
    if names is not None:
        names.update(site_files(sites, html))
    if not sites:
        return
    opts = {"html": html, "only": only, "tz": tz}
    plans = []
    for site in sites:
        p = copy.copy(params)
        p.site = site
        scan = plan_scan(lake, p, manifest)
        scan.span = span
        plans.append((site, p, scan))
    if client is None:
        for site, p, scan in plans:
            yield site, site_document(scan, p, opts, lake=lake)
        return
    here = [(site, p, scan) for site, p, scan in plans if scan.copied]
    futures = {client.submit(site_document, scan, p, opts, pure=False): site
               for site, p, scan in plans if not scan.copied}
    for site, p, scan in here:
        yield site, site_document(scan, p, opts, lake=lake)
    from distributed import as_completed

    for fut in as_completed(list(futures)):
        yield futures[fut], _dask(client, fut.result)


def site_document(scan: LakeScan, params: Any, opts: dict[str, Any], lake: Lake | None = None) -> str:
    """One site's document from its plan (here, or a task on a worker)."""
    from ..usage.dashboard import document
    from ..usage.reports import REPORT_MEMORY_LIMIT

    params.span = scan.span
    con = open_scan(scan, lake, memory_limit=REPORT_MEMORY_LIMIT)
    try:
        return document(con, params, html=opts["html"], only=opts["only"], tz=opts["tz"],
                        title=f"logferry report: {params.site}", tenant=True)
    finally:
        con.close()


def write_each_site(lake: Lake, params: Any, out: str, *, html: bool, only: list[str] | None, tz: str,
                    client: Any = None, on_site: Callable[[str, str], None] | None = None) -> int:
    """Every site's document into the folder ``out`` (made if need be; a file there of the
    same name replaced); the number of sites."""
    import os

    os.makedirs(out, exist_ok=True)
    n = 0
    names: dict[str, str] = {}
    for site, text in each_site(lake, params, html=html, only=only, tz=tz, client=client, names=names):
        path = os.path.join(out, names[site])
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        n += 1
        if on_site is not None:
            on_site(site, path)
    return n
