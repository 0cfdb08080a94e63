#!/usr/bin/env bash
# Install the package, then run the claim check and the clinic report on the shipped example study.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
mkdir -p output
.venv/bin/backpain-outcomes claims data/example --csv output/claims.csv | tee output/claims.txt
.venv/bin/backpain-outcomes report data/example -o output/report.html
echo
echo "Claim check (text):  $(pwd)/output/claims.txt"
echo "Claim check (CSV):   $(pwd)/output/claims.csv"
echo "Clinic report:       $(pwd)/output/report.html"
