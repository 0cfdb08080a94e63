#!/usr/bin/env bash
# Install the package and run the claim check and the clinic report on the shipped example study.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
mkdir -p output
.venv/bin/backpain-outcomes claims data/example | tee output/claims.txt
echo "Claim check written to $(pwd)/output/claims.txt"
if .venv/bin/backpain-outcomes --help | grep -q " report"; then
  .venv/bin/backpain-outcomes report data/example -o output/report.html
fi
