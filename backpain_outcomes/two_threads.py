"""Two parts of a computation at once: the second thread of loading.

:func:`alongside` runs one function in a second thread while the calling thread runs another, and
returns both results as if they had run one after the other: the second thread runs in the caller's
context (``np.errstate`` is a context variable), an error of the first function is raised first, and
the warnings module is left as it was found. :func:`~backpain_outcomes.load_study` reads and checks
the scores table this way while a second thread reads and checks the other tables: Arrow's readers and
most of the work on their arrays run without holding the interpreter lock.

Why the warnings module is saved and put back: ``warnings.catch_warnings``, which pandas enters in many
of its operations, saves and restores the module's filters and its function that shows warnings, and
is not thread-safe. Entered and left in two threads at once, it can leave the other thread's filters or
recording list in place, which silenced or swallowed the caller's own warnings after the load.
"""

from __future__ import annotations

import contextvars
import os
import warnings
from concurrent.futures import ThreadPoolExecutor

__all__ = ["alongside", "processors"]


def processors() -> int:
    """The processors this process may run on (its CPU affinity where the system tells it, else the
    machine's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def alongside(work, other):
    """``(work(), other())``: ``work`` in a second thread while this one runs ``other``, or one after the other
    on a single processor.

    Errors come as they would one after the other: when both fail, the error of ``work`` is raised. The
    warnings module's filters and display functions are put back as they were when both have ended.
    """
    if processors() < 2:
        return work(), other()
    state = _warnings_state()
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            future = pool.submit(contextvars.copy_context().run, work)  # (in the caller's context)
            try:
                done = other()
            except BaseException:
                future.result()  # an error of ``work`` first: it came first one after the other
                raise
            return future.result(), done
    finally:
        _restore_warnings(state)


def _warnings_state() -> tuple:
    """The warnings module's filters (the list and what it holds) and the functions that show warnings."""
    return (warnings.filters, list(warnings.filters), warnings.showwarning,
            getattr(warnings, "_showwarnmsg_impl", None))


def _restore_warnings(state: tuple) -> None:
    """Put back the warnings module's state as :func:`_warnings_state` found it."""
    filters, held, show, impl = state
    filters[:] = held
    warnings.filters = filters
    warnings.showwarning = show
    if impl is not None:
        setattr(warnings, "_showwarnmsg_impl", impl)  # noqa: B010 - (a private name: mypy knows no such attribute)
    if hasattr(warnings, "_filters_mutated"):
        warnings._filters_mutated()
