"""Shipping: read new log data, shape it, rotate it into objects and deliver them.

``engine`` is the chain (plan -> read -> transform -> encode + rotate -> name -> deliver
-> commit), ``encode`` the encoders (a job's format, compression and limits, and a
destination's), ``state`` the SQLite book-keeping, ``schedule``/``retention`` pure planners.
"""

#: the longest an object may stay open (``rotate.max_age_secs``, ``ship --max-age-secs``): a year
MAX_AGE_SECS = 366 * 86400
