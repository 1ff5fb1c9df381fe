"""Scaling the worker service by queue depth.

``policy`` is the pure decision (no I/O, no clock); ``depth``, ``ecs``, ``cloudwatch``
and ``state`` are the small adapters that feed it and carry out what it decides;
``wake`` is how the producer asks for a run between the scheduled ones.
"""
