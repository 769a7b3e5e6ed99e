"""diffio-progress: the get_generation_progress Cloud Function and its tools."""
