"""Writers racing on one document on the emulator, with an observer reading throughout."""

from __future__ import annotations

import threading
from collections.abc import Callable


def race(*targets: Callable[[], None], observe: Callable[[threading.Event], None]) -> None:
    """Run the writers and an observer together; re-raise the first error in this thread."""
    barrier = threading.Barrier(len(targets) + 1)
    done = threading.Event()
    errors: list[BaseException] = []

    def guarded(target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                barrier.wait()
                target()
            except BaseException as error:  # surfaced below
                errors.append(error)

        return run

    writers = [threading.Thread(target=guarded(t)) for t in targets]
    observer = threading.Thread(target=guarded(lambda: observe(done)))
    for thread in (*writers, observer):
        thread.start()
    for thread in writers:
        thread.join(120)
    done.set()
    observer.join(30)
    assert not errors, errors
