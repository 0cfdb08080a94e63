"""Write the notebooks in notebooks/ from the cell sources below (run: python scripts/make_notebooks.py)."""

from pathlib import Path

import nbformat as nbf

NB = Path(__file__).resolve().parents[1] / "notebooks"


def write(name, cells):
    nb = nbf.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbf.v4.new_markdown_cell(c[3:]) if c.startswith("md:") else nbf.v4.new_code_cell(c) for c in cells]
    nbf.write(nb, NB / name)


write("01_quickstart.ipynb", [
    "md:# Quick start\nLoad the shipped example study (simulated, 500 patients), look at what was loaded and "
    "what was excluded, and plot raw pain trajectories by modality.",
    "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\nimport backpain_outcomes as bpo\n"
    "study = bpo.load_study(bpo.example_path())\nprint(study.summary())",
    "md:## Flow counts\nRows read = rows used + rows excluded, per table.",
    "study.flow()",
    "md:## Episodes by modality and chronicity\nChronicity is measured from onset to first contact "
    "(acute < 6 weeks, subacute 6-12, chronic >= 12).",
    "import pandas as pd\npd.crosstab(study.episodes['modality'], study.episodes['chronicity'])",
    "md:## Raw NRS trajectories by modality (days since first contact)",
    "frame = study.analysis_frame('nrs', origin='first_contact', include_baseline=True)\n"
    "mods = list(frame['modality'].cat.categories)\n"
    "fig, axes = plt.subplots(2, 3, figsize=(12, 6), sharex=True, sharey=True)\n"
    "for ax, mod in zip(axes.flat, mods):\n"
    "    sub = frame[frame['modality'] == mod]\n"
    "    for _, g in list(sub.groupby('episode_id'))[:40]:\n"
    "        ax.plot(g['day'], g['score'], color='grey', alpha=0.3, lw=0.8)\n"
    "    ax.set_title(mod); ax.set_xlim(0, 200)\n"
    "fig.supxlabel('days since first contact'); fig.supylabel('pain NRS')\nplt.close(fig)\nfig",
    "md:## What a user sees when a file is broken\nEvery problem is listed at once, as "
    "`file:row:column: message (got VALUE, expected ...)`.",
    "import tempfile, pathlib\nd = pathlib.Path(tempfile.mkdtemp())\n"
    "(d / 'scores.csv').write_text('patient_id,date,instrument,score\\n'\n"
    "    'p1,2024-01-05,NPRS,7\\np1,03/04/2024,nrs,5\\np2,2024-01-05,VAS (mm),120\\np3,2024-02-01,SF-36,50\\n')\n"
    "try:\n    bpo.load_study(d)\nexcept bpo.DataValidationError as err:\n    print(err)\n    problems = err.problems\n"
    "problems[['row', 'column', 'value', 'reason']]",
])

write("03_does_back_pain_resolve_on_its_own.ipynb", [
    "md:# Does back pain resolve on its own?\nThe popular claim: *almost 90% of back-pain episodes resolve on "
    "their own*. In the literature that figure is a consultation statistic (Croft et al. 1998, BMJ: about 90% "
    "stopped consulting by 3 months, 21% had completely recovered). Here the claim is tested with censoring, "
    "delayed entry and an explicit definition of *resolved*.",
    "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\nimport numpy as np\nimport pandas as pd\n"
    "import backpain_outcomes as bpo\nstudy = bpo.load_study(bpo.example_path())\n"
    "claim = bpo.test_resolution_claim(study, claimed=0.90, by_day=42)\nprint(claim.summary())",
    "md:## Cumulative resolution of untreated episodes (left-truncated Kaplan-Meier)",
    "curve = bpo.resolution_curve(study, by='modality', origin='onset')\nax = curve.plot(claimed=0.90)\n"
    "plt.close(ax.figure)\nax.figure",
    "md:## Sensitivity: how the answer moves with the definition, origin and relapse handling\n"
    "Each cell is the estimated share of untreated episodes resolved by that day.",
    "ax = claim.plot()\nplt.close(ax.figure)\nax.figure",
    "md:## Every claim of the project (C1-C4)",
    "report = bpo.evaluate_seed_claims(study)\nreport.table[['claim', 'comparison', 'estimate', 'ci_low', 'ci_high', "
    "'p_holm', 'verdict']]",
    "md:## A world where 90% is true, and one where it is false\nThe simulator sets the true share of untreated "
    "episodes resolved by day 42. The test should not reject when the truth is 90% and should reject when it is "
    "lower.",
    "rows = []\nfor truth in (0.90, 0.70):\n    s, t = bpo.simulate_study(800, seed=4, untreated_share=0.4, "
    "untreated_resolved_by_42=truth)\n    c = bpo.test_resolution_claim(s, origin='first_contact', sensitivity=False)\n"
    "    rows.append({'true': truth, 'estimate': c.estimate, 'ci_low': c.ci_low, 'ci_high': c.ci_high, "
    "'verdict': c.verdict_code})\npd.DataFrame(rows)",
    "md:### Power: untreated episodes needed to refute 90%\nShare of simulated studies (20 per cell, kept small so the "
    "notebook runs in CI; `benchmarks/calibrate_claim.py` runs the full version) in which the test rejects "
    "p >= 0.90 at the one-sided 5% level.",
    "res = []\nfor truth in (0.70, 0.50, 0.30):\n    for n_untreated in (10, 30):\n        hits = 0\n"
    "        for rep in range(20):\n            s, _ = bpo.simulate_study(int(n_untreated / 0.5), seed=1000 * rep + n_untreated, "
    "untreated_share=0.5, untreated_resolved_by_42=truth)\n"
    "            import warnings\n            with warnings.catch_warnings():\n                warnings.simplefilter('ignore')\n"
    "                c = bpo.test_resolution_claim(s, origin='first_contact', sensitivity=False, min_n=1)\n"
    "            hits += c.p_value_below < 0.05\n        res.append({'true': truth, 'untreated episodes': n_untreated, "
    "'power': hits / 20})\npd.DataFrame(res).pivot(index='untreated episodes', columns='true', values='power')",
    "md:## Real data: Anderson (1984)\n101 patients with back pain, progress three weeks after treatment "
    "(R package gnm, `backPain`). What share had complete relief, or marked improvement or better? Wilson 95% CI.",
    "from statsmodels.stats.proportion import proportion_confint\n"
    "anderson = pd.read_csv(bpo.example_path().parent / 'anderson1984_backpain.csv')\nn = len(anderson)\n"
    "out = []\nfor label, k in [('complete relief', (anderson.pain_code == 6).sum()),\n"
    "                 ('marked improvement or complete relief', (anderson.pain_code >= 5).sum())]:\n"
    "    lo, hi = proportion_confint(k, n, method='wilson')\n"
    "    out.append({'outcome at 3 weeks': label, 'n': n, 'events': int(k), 'share': k / n, 'ci_low': lo, 'ci_high': hi})\n"
    "pd.DataFrame(out)",
    "md:Even with a lenient definition (marked improvement or better), well under 90% of these treated patients had "
    "resolved at three weeks: 44% (95% CI 35-54%); complete relief 16% (10-24%).",
])
