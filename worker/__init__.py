"""The worker: drain the queue, parse events, move metrics, serve /metrics."""
