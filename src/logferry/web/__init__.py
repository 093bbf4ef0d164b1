"""The operator's web console (``logferry serve``): export jobs, their history, stop/start,
the job editor and the usage reports, over the same library functions the CLI calls."""
