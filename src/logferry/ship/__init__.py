"""Shipping: read new log data, shape it, rotate it into objects and deliver them.

``engine`` is the chain (sources -> transforms -> writer -> rotate -> name -> destination
-> checkpoint), ``state`` the SQLite book-keeping, ``schedule``/``retention`` pure planners.
"""
