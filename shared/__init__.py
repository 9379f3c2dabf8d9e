"""The contract between receiver and worker: configuration, envelope, queue, logging."""
