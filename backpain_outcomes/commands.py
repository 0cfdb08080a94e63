"""Analysis sub-commands of the CLI (claims, curves, report), one small function each."""

from __future__ import annotations
