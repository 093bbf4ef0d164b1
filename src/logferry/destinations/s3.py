"""``s3://bucket/prefix`` through s3fs.  Credentials, region and endpoint come from the
usual AWS chain (``AWS_ACCESS_KEY_ID``..., profiles, ``AWS_ENDPOINT_URL``,
``AWS_ENDPOINT_URL_S3``) unless the job gives ``endpoint_url`` / ``region``."""

from __future__ import annotations

import os
from typing import Any

from ._fsspec import FsspecDestination


class S3Destination(FsspecDestination):
    scheme = "s3"

    def _connect(self, url: str, options: dict[str, Any]):
        import s3fs

        client_kwargs: dict[str, Any] = {}
        endpoint = options.get("endpoint_url") or os.environ.get("AWS_ENDPOINT_URL_S3") or \
            os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            client_kwargs["endpoint_url"] = endpoint
        region = options.get("region") or os.environ.get("AWS_REGION") or \
            os.environ.get("AWS_DEFAULT_REGION")
        if region:
            client_kwargs["region_name"] = region
        # one attempt per put: the engine retries with its own (reported, injectable)
        # backoff, so neither botocore nor s3fs may sleep and retry underneath it
        kw: dict[str, Any] = {"client_kwargs": client_kwargs, "skip_instance_cache": True,
                              "config_kwargs": {"retries": {"mode": "standard", "max_attempts": 1}}}
        if options.get("timeout"):
            t = float(options["timeout"])
            kw["config_kwargs"].update(connect_timeout=t, read_timeout=t)
        if options.get("access_key_id"):
            kw["key"] = options["access_key_id"]
            kw["secret"] = options.get("secret_access_key")
        fs = s3fs.S3FileSystem(**kw)
        fs.retries = 1
        return fs, url[len("s3://"):].strip("/")
