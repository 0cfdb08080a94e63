#!/usr/bin/env bash
# Create .venv with uv and install the package (and, with "test", its test extras).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check uv >/dev/null 2>&1 || python3 -m pip install --quiet uv
[ -x .venv/bin/python ] || python3 -m uv venv --quiet --python "$(command -v python3)" .venv
if [ "${1:-}" = "test" ]; then
  python3 -m uv pip install --quiet --compile-bytecode --python .venv/bin/python -e '.[test]'
else
  python3 -m uv pip install --quiet --compile-bytecode --python .venv/bin/python -e .
fi
