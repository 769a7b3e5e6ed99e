"""`python -m diffio_progress.bench`: the benchmark (``make bench``)."""

from diffio_progress.bench.run import main

raise SystemExit(main())
