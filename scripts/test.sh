#!/usr/bin/env bash
# Install the package with its test extras and run the whole test suite (notebooks included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh test
.venv/bin/python -m pytest -q tests backpain_outcomes --doctest-modules --nbmake notebooks "$@"
# Documentation site (warnings are errors) and the type check; mypy comes with the docs extras.
bash scripts/build_docs.sh -q
.venv/bin/python -m mypy backpain_outcomes
