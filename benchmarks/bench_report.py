"""Clinic report on a simulated network of 100k episodes (target: under 60 s), with the disclosure audit.

Run: ``.venv/bin/python benchmarks/bench_report.py [n_episodes]``
"""

import sys
import tempfile
import time
from pathlib import Path

import backpain_outcomes as bpo
from backpain_outcomes.report import render_html
from backpain_outcomes.report_content import report_content


def main(n=100_000):
    t0 = time.perf_counter()
    study, _ = bpo.simulate_study(n, seed=1, n_clinics=10, therapists_per_clinic=8)
    print(f"simulated {n:,} episodes, {len(study.scores):,} scores in {time.perf_counter() - t0:.1f} s")
    for clinic in (None, "C1"):
        t0, c0 = time.perf_counter(), time.process_time()
        content = report_content(study, clinic=clinic, progress=False)
        t_content = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "report.html"
            out.write_text(render_html(content), encoding="utf-8")
            size = out.stat().st_size / 1e6
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        tab = content.ledger.table()
        print(f"clinic_report ({clinic or 'whole network'}): {dt:.1f} s in all ({cpu:.1f} s CPU), content {t_content:.1f} s, "
              f"{size:.1f} MB HTML; {len(tab)} counts, {int((tab['status'] == 'primary').sum())} primary and "
              f"{int((tab['status'] == 'secondary').sum())} secondary suppressions in {content.ledger.rounds} audit rounds")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
