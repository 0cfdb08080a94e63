"""The result contract shared by every analysis.

Every analysis returns an immutable :class:`Result` with

* ``table``: the main tidy DataFrame, with documented stable columns;
* ``notes``: every caveat, warning and diagnostic, as plain sentences;
* ``summary()``: a plain-text summary;
* ``plot(ax=None)``: a matplotlib figure of the result, returning the Axes;
* ``_repr_html_()``: the notebook view (every string escaped);

plus the attributes of its own domain. Attributes cannot be reassigned after
the result is built; a method that picks a variant (another number of
classes, another day) returns a new result.
"""

from __future__ import annotations

import html

import pandas as pd

from .export import export_result

__all__ = ["Result", "text_block", "html_block"]


def text_block(title: str, lines: list[str], tables: dict[str, pd.DataFrame] | None = None,
               decimals: int = 3) -> str:
    """A plain-text summary: a title, lines and optional titled tables."""
    out = [title, "=" * len(title), *lines]
    for name, df in (tables or {}).items():
        out += ["", name, "-" * len(name), df.round(decimals).to_string(index=False)]
    return "\n".join(out)


def html_block(title: str, lines: list[str], tables: dict[str, pd.DataFrame] | None = None,
               decimals: int = 3) -> str:
    """Notebook HTML for a result; every string is escaped."""
    parts = [f"<div class='bpo-result'><h4>{html.escape(title)}</h4>"]
    if lines:
        parts.append("<ul>" + "".join(f"<li>{html.escape(str(x))}</li>" for x in lines) + "</ul>")
    for name, df in (tables or {}).items():
        parts.append(f"<p><b>{html.escape(name)}</b></p>")
        parts.append(df.round(decimals).to_html(index=False, escape=True, border=0, na_rep=""))
    parts.append("</div>")
    return "".join(parts)


class Result:
    """Base class of every analysis result (see the module docstring for the contract).

    ``Result(**fields)`` sets every field and freezes; subclasses that
    compute attributes set them in their own ``__init__`` and call
    ``self._freeze()`` last; they implement ``_parts()`` returning
    ``(title, lines, tables)`` for the text and HTML views, and ``plot``.
    """

    _frozen = False
    table: pd.DataFrame
    notes: list[str]

    def __init__(self, **fields):
        """Set every field as an attribute, then freeze (subclasses with computed fields override this)."""
        for key, value in fields.items():
            setattr(self, key, value)
        self._freeze()

    def __setattr__(self, name, value):
        if self._frozen:
            raise AttributeError(f"{type(self).__name__} is immutable: {name!r} cannot be changed; "
                                 "methods that pick a variant return a new result")
        super().__setattr__(name, value)

    def __delattr__(self, name):
        if self._frozen:
            raise AttributeError(f"{type(self).__name__} is immutable: {name!r} cannot be deleted")
        super().__delattr__(name)

    def _freeze(self) -> None:
        object.__setattr__(self, "notes", [str(n) for n in getattr(self, "notes", [])])
        object.__setattr__(self, "_frozen", True)

    def _parts(self):  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def summary(self) -> str:
        """Plain-text summary of the result, its notes and its main table."""
        return text_block(*self._parts())

    def __repr__(self) -> str:
        title, lines, _ = self._parts()
        return f"<{type(self).__name__}: {title}; " + "; ".join(map(str, lines[:2])) + ">"

    def _repr_html_(self) -> str:
        return html_block(*self._parts())

    def export(self, path, format: str | None = None, force: bool = False, study=None, **options):
        """Write the result as a publication table: ``.md`` (Markdown), ``.tex`` (LaTeX, booktabs),
        ``.docx`` (Word, the ``export`` extra) or ``.csv`` (the raw ``.table``), by the suffix of
        ``path`` or ``format``; never over an existing file without ``force=True``. ``options`` (``digits``,
        ``ci``, ``labels``, ``columns``) go to :func:`backpain_outcomes.export.publication_table`.
        A sidecar ``<name>.provenance.json`` records the package version, the result's settings and, with
        ``study``, hashes of the study's input files and tables. Returns the path."""
        return export_result(self, path, format=format, force=force, study=study, **options)

    def plot(self, ax=None):  # pragma: no cover - every subclass overrides
        """Figure of the result on ``ax`` (a new figure when None); returns the Axes."""
        raise NotImplementedError
