#!/usr/bin/env bash
# Install the package, then run the claim check and the clinic report on the shipped example study.
# Outputs go to output/ and are replaced on every run (--force: they are this script's own outputs).
# Every output records its provenance (version, configuration, date, SHA-256 of the inputs): in claims.txt
# (footer) and report.html (<head>), next to claims.csv in claims.csv.provenance.json; read any of them back
# with backpain_outcomes.provenance.read_provenance(path).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
mkdir -p output
.venv/bin/backpain-outcomes claims data/example --csv output/claims.csv --text output/claims.txt --force
.venv/bin/backpain-outcomes report data/example -o output/report.html --force
echo
echo "Claim check (text):  $(pwd)/output/claims.txt"
echo "Claim check (CSV):   $(pwd)/output/claims.csv  (provenance: output/claims.csv.provenance.json)"
echo "Clinic report:       $(pwd)/output/report.html"
