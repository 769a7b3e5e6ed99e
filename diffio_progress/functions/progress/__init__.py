"""The progress poll: POST /v1/get_generation_progress (validate, admit, read, compose)."""
