"""The webhook receiver: verify, enqueue, answer at once."""
