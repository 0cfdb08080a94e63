"""Sphinx configuration for the backpain_outcomes documentation.

Build with ``bash scripts/build_docs.sh`` (warnings are errors), or directly:
``sphinx-build -W --keep-going -b html docs docs/_build/html``.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(ROOT))  # document the checkout, even where the package is not installed

import backpain_outcomes  # noqa: E402

project = "backpain_outcomes"
author = "backpain_outcomes developers"
copyright = "backpain_outcomes developers"  # noqa: A001
release = backpain_outcomes.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_nb",
    "bpo_docs",
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints", "_ext", "_templates"]
templates_path = ["_templates"]

# -- autodoc / autosummary / numpydoc ---------------------------------------
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": False}
autodoc_typehints = "none"  # numpydoc renders the types written in the docstrings
autodoc_member_order = "bysource"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks: set[str] = set()  # docstrings are checked by review, not by the build
numpydoc_xref_param_type = False

# -- myst-nb: notebooks are rendered from their stored outputs ---------------
nb_execution_mode = "off"
nb_output_stderr = "remove"  # e.g. progress-bar notices that name local paths
nb_merge_streams = True
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# -- HTML ---------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"backpain_outcomes {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 6,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"index": [], "getting_started": [], "limitations": []}
html_show_sourcelink = False
