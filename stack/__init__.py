"""Run the whole system on one machine: an embedded Redis, a receiver and a worker.

It starts the two processes by command (``python -m receiver``, ``python -m worker``); it never
imports them.
"""
