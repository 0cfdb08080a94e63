"""Shared rendering helpers for result objects: text summaries and notebook HTML."""

from __future__ import annotations

import html

import pandas as pd


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


class ResultMixin:
    """Gives a result ``summary()``, ``__repr__`` and ``_repr_html_`` from ``_parts()``.

    ``_parts`` returns ``(title, lines, tables)``.
    """

    def _parts(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def summary(self) -> str:
        """Plain-text summary of the result."""
        return text_block(*self._parts())

    def __repr__(self) -> str:
        title, lines, _ = self._parts()
        return f"<{type(self).__name__}: {title}; " + "; ".join(lines[:2]) + ">"

    def _repr_html_(self) -> str:
        return html_block(*self._parts())
