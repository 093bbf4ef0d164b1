"""What the commands let libraries print.  An operator's terminal (``ship``, ``serve``,
``run``) shows logferry's own lines: no library's INFO chatter (asyncssh's connection
log, botocore's credential lookups) and no deprecation notices of the libraries under it
(cryptography's about asyncssh, botocore's, ...).  A destination that is down is one line
per retry, from the engine."""

from __future__ import annotations

import logging
import os
import warnings

#: libraries whose own warnings are theirs to fix, not the operator's
LIBRARIES = ("asyncssh", "sshfs", "cryptography", "botocore", "aiobotocore", "boto3", "s3fs",
             "gcsfs", "google", "fsspec", "paramiko", "urllib3", "aiohttp", "uvicorn", "starlette",
             "distributed")


def quiet_libraries() -> None:
    """Deprecation warnings and the listed libraries' warnings are not shown (set before
    they are imported: some warn at import)."""
    for cat in (DeprecationWarning, PendingDeprecationWarning):
        warnings.filterwarnings("ignore", category=cat)
    warnings.filterwarnings("ignore", module="(" + "|".join(LIBRARIES) + r")(\.|$)")


class SafeFormatter(logging.Formatter):
    """Each record's message as :func:`logferry.term.safe` makes text: a log line holds
    file names, log values and servers' answers, whose escape sequences must not reach
    the operator's terminal (a traceback after it keeps its lines)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        from .term import safe

        record.message = safe(record.message)
        return super().formatMessage(record)


def setup(level: int = logging.WARNING, fmt: str = "%(message)s") -> None:
    """Log records of logferry at ``level`` and above, every other logger's at WARNING."""
    logging.basicConfig(level=logging.WARNING, format=fmt, force=True)
    for h in logging.getLogger().handlers:
        h.setFormatter(SafeFormatter(fmt))
    logging.getLogger("logferry").setLevel(level)
    # gcsfs logs each refused request with its traceback, then raises: the engine says it
    logging.getLogger("gcsfs").setLevel(logging.CRITICAL)
    # Dask's scheduler, nanny and client log every step at INFO through the handler Dask
    # sets up when it is imported (later, by ingest --lake --workers), as its config says;
    # the environment carries the setting to the worker processes too
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
