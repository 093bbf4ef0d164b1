"""``gs://bucket/prefix`` through gcsfs.  Credentials: ``token`` option or the default
Google chain; ``endpoint_url`` (or ``STORAGE_EMULATOR_HOST``) for an emulator."""

from __future__ import annotations

import os
from typing import Any

from ._fsspec import FsspecDestination


class GCSDestination(FsspecDestination):
    scheme = "gs"

    def _connect(self, url: str, options: dict[str, Any]):
        if options.get("endpoint_url") or os.environ.get("STORAGE_EMULATOR_HOST"):
            # emulators speak JSON/XML only; newer gcsfs probes a gRPC storage layout first
            os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
        import gcsfs

        kw: dict[str, Any] = {"skip_instance_cache": True}
        endpoint = options.get("endpoint_url") or os.environ.get("STORAGE_EMULATOR_HOST")
        if endpoint:
            kw["endpoint_url"] = endpoint
            kw["token"] = options.get("token") or "anon"
        elif options.get("token"):
            kw["token"] = options["token"]
        if options.get("project"):
            kw["project"] = options["project"]
        fs = gcsfs.GCSFileSystem(**kw)
        return fs, url.split("://", 1)[1].strip("/")
