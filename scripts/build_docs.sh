#!/usr/bin/env bash
# Install the docs extras into .venv and build the documentation site with warnings as errors.
# Output: docs/_build/html/index.html. Extra arguments go to sphinx-build (e.g. -E for a clean build).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check uv >/dev/null 2>&1 || python3 -m pip install --quiet uv
[ -x .venv/bin/python ] || python3 -m uv venv --quiet --python "$(command -v python3)" .venv
python3 -m uv pip install --quiet --compile-bytecode --python .venv/bin/python -e '.[docs]'
.venv/bin/python -m sphinx -W --keep-going -b html docs docs/_build/html "$@"
echo "Documentation: $(pwd)/docs/_build/html/index.html"
