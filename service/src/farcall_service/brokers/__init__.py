"""Brokers: what moves tasks to endpoints, results to waiters and wake-ups between
service processes (``interface``); ``local`` is the built-in one."""
