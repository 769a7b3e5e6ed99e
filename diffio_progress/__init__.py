"""diffio-progress: the get_generation_progress Cloud Function, its workers' writer and its tools.

core/ pure rules · functions/ the deployed shell · worker/ the stage writer ·
tools/ the CLI and local world · bench/ the benchmark (see the README's "Where things are").
"""
