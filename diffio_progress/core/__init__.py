"""The pure rules: parse a request, decide on a key, compose progress. No I/O, clock or environment.

Shared by the deployed functions and the workers. Nothing here imports ``google``,
``flask`` or another folder of this package; a test checks it through the import graph.
"""
