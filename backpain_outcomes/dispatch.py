"""Analyses that accept an in-memory study or a partitioned registry.

:func:`on_study` is :func:`functools.singledispatch` on the ``study`` argument,
with one difference that matters to users: the study may also be passed by
keyword (``test_resolution_claim(study=s, day=42)``), as every analysis's
signature says it can. The implementation for a type is registered with
``.register(type, function)`` (the registry modules register their partitioned
versions this way), and the signature and docstring stay those of the
in-memory function.
"""

from __future__ import annotations

import functools

__all__ = ["on_study"]


def on_study(func):
    """Dispatch ``func`` on the type of its first argument, ``study``, given by position or by keyword.

    Examples
    --------
    >>> @on_study
    ... def size(study, scale=1):
    ...     return len(study) * scale
    >>> _ = size.register(dict, lambda study, scale=1: -1)
    >>> size([1, 2], 2), size(study=[1, 2, 3]), size({"a": 1})
    (4, 3, -1)
    """
    dispatcher = functools.singledispatch(func)

    @functools.wraps(func)
    def analysis(*args, **kwargs):
        if args:
            return dispatcher.dispatch(type(args[0]))(*args, **kwargs)
        if "study" in kwargs:
            study = kwargs.pop("study")
            return dispatcher.dispatch(type(study))(study, **kwargs)
        raise TypeError(f"{func.__name__}() missing its first argument: study")

    analysis.register = dispatcher.register  # type: ignore[attr-defined]
    analysis.dispatch = dispatcher.dispatch  # type: ignore[attr-defined]
    analysis.registry = dispatcher.registry  # type: ignore[attr-defined]
    return analysis
