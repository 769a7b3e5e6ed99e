"""Status-change events: the ``on_generation_written`` function's I/O (decode, outbox, sinks)."""
