"""Write the notebooks in notebooks/ from the cell sources below.

Run: python scripts/make_notebooks.py [--execute]   (--execute stores the outputs in the notebooks)
"""

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
    "%matplotlib inline\nimport matplotlib.pyplot as plt\nimport backpain_outcomes as bpo\n"
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
    "fig.supxlabel('days since first contact'); fig.supylabel('pain NRS')",
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
    "%matplotlib inline\nimport matplotlib.pyplot as plt\nimport numpy as np\nimport pandas as pd\n"
    "import backpain_outcomes as bpo\nstudy = bpo.load_study(bpo.example_path())\n"
    "claim = bpo.test_resolution_claim(study, claimed=0.90, by_day=42)\nprint(claim.summary())",
    "md:## Cumulative resolution of untreated episodes (left-truncated Kaplan-Meier)",
    "curve = bpo.resolution_curve(study, by='modality', origin='onset')\nax = curve.plot(claimed=0.90)",
    "md:## Sensitivity: how the answer moves with the definition, origin and relapse handling\n"
    "Each cell is the estimated share of untreated episodes resolved by that day.",
    "ax = claim.plot()",
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

write("02_recovery_curves_by_modality.ipynb", [
    "md:# Recovery curves by modality\nEach group's pain follows `plateau + (b0 - plateau) * exp(-day / tau)`; "
    "the half-life is `tau * ln 2`. Standard errors are clustered by episode (repeated measures).",
    "%matplotlib inline\nimport matplotlib.pyplot as plt\nimport pandas as pd\n"
    "import backpain_outcomes as bpo\nstudy = bpo.load_study(bpo.example_path())\n"
    "curves = bpo.fit_recovery_curves(study, by='modality', origin='first_contact')\n"
    "curves.params[['modality', 'b0', 'plateau', 'tau_days', 'half_life_days', 'half_life_days_ci_low', "
    "'half_life_days_ci_high', 'n_episodes']].round(2)",
    "md:## Curves with the natural course of Costa et al. 2012 overlaid\nThe dashed and dotted black lines are "
    "the published mean pain (0-100, divided by 10) of acute and persistent low back pain, from onset. Our "
    "curves start at first contact, so they are not aligned at day 0 for episodes seen weeks after onset.",
    "ax = curves.plot(reference='costa2012')",
    "md:All modalities fall quickly in the first weeks and level off; untreated episodes level off higher. "
    "The bands overlap widely: differences in the plateau are small compared with the spread between episodes.",
    "md:## By chronicity",
    "by_chron = bpo.fit_recovery_curves(study, by='chronicity', origin='first_contact')\n"
    "ax = by_chron.plot(reference=None)",
    "md:## Per-episode half-lives\nEvery episode fitted on its own (batched Levenberg-Marquardt); episodes with "
    "fewer than four measurements, or whose decay time is not identified, are listed rather than dropped.",
    "ep = bpo.fit_episode_curves(study, origin='first_contact')\nprint(ep['converged'].value_counts())\n"
    "fig, ax = plt.subplots(figsize=(7, 4))\n"
    "for mod, g in ep[ep['converged']].groupby('modality'):\n"
    "    ax.hist(g['half_life_days'].clip(upper=60), bins=30, histtype='step', label=mod)\n"
    "ax.set_xlabel('half-life (days, clipped at 60)'); ax.legend(fontsize=8);",
    "md:## Longitudinal mixed model\nRandom intercept and slope per episode; the fast engine gives the same "
    "estimates as lme4 and statsmodels.",
    "m = bpo.fit_mixed_model(study.analysis_frame('nrs', origin='first_contact'), "
    "'score ~ day * modality + baseline', re_formula='~ day')\nprint(m.summary())",
    "md:## Modalities compared with untreated episodes at 6 weeks",
    "cmp = bpo.compare_modalities(study, instrument='nrs', at_day=42, origin='first_contact')\n"
    "cmp.table[['modality', 'difference', 'ci_low', 'ci_high', 'p_holm', 'responder_rate', 'hazard_ratio', 'n']].round(3)",
    "ax = cmp.plot()",
    "md:Negative differences mean lower pain than untreated episodes after adjusting for baseline pain and "
    "chronicity. None of the intervals excludes zero by a wide margin here, and these are observational "
    "associations, not randomised comparisons.",
])

write("04_trajectory_subgroups.ipynb", [
    "md:# Trajectory subgroups\nA latent class growth model finds groups of episodes with similar pain "
    "courses. Dunn, Jordan & Croft (2006) found four in primary care: persistent mild (36%), recovering (30%), "
    "severe chronic (21%) and fluctuating (13%). The number of classes is chosen from the enumeration table.",
    "%matplotlib inline\nimport matplotlib.pyplot as plt\nimport pandas as pd\n"
    "import backpain_outcomes as bpo\nstudy = bpo.load_study(bpo.example_path())\n"
    "traj = bpo.fit_trajectories(study, instrument='nrs', k=range(1, 6), n_init=10, seed=0,\n"
    "                            origin='first_contact', max_day=365)\n"
    "print(traj.explanation)\ntraj.enumeration.drop(columns='note').round(3)",
    "fig, ax = plt.subplots(figsize=(6, 3.5))\nax.plot(traj.enumeration['k'], traj.enumeration['bic'], 'o-')\n"
    "ax.set_xlabel('number of classes k'); ax.set_ylabel('BIC (lower is better)');",
    "md:## The chosen classes",
    "traj.sizes.round(3)",
    "ax = traj.plot(n_spaghetti=120)",
    "md:## Classes by modality and chronicity (row percentages)",
    "traj.crosstab('modality').attrs['percent'].round(0)",
    "traj.crosstab('chronicity').attrs['percent'].round(0)",
    "md:## Comparison with Dunn 2006\nThe four-class solution, next to the shares Dunn et al. reported.",
    "traj.select(4)\ndunn = pd.DataFrame({'label': ['persistent mild', 'recovering', 'severe persistent', "
    "'fluctuating'], 'Dunn 2006 share': [0.357, 0.304, 0.208, 0.132]})\n"
    "ours = traj.sizes.groupby('label', as_index=False)['share'].sum()\n"
    "dunn.merge(ours, on='label', how='outer').round(3)",
    "md:The example study is simulated with these four shapes (plus treatment effects), so the model should "
    "find them; in real data the number and shape of classes is an empirical question (Kongsted 2015 found "
    "5 to 12 depending on the model).",
])

write("05_clinic_report.ipynb", [
    "md:# The clinic report\nOne command turns a clinic's export into a report its staff can read: "
    "`backpain-outcomes report DIR -o report.html` (or `report.pdf` with Chromium installed).",
    "import tempfile, pathlib, re, base64\nfrom IPython.display import HTML, display\n"
    "import backpain_outcomes as bpo\nstudy = bpo.load_study(bpo.example_path())\n"
    "out = bpo.clinic_report(study, pathlib.Path(tempfile.mkdtemp()) / 'report.html', progress=False)\n"
    "print(out, out.stat().st_size, 'bytes')",
    "md:## Its figures, inline",
    "html = out.read_text()\nfor data, caption in re.findall(r'base64,([^\"]+)\" alt=\"[^\"]*\"><figcaption>([^<]+)', html):\n"
    "    display(HTML(f'<img src=\"data:image/png;base64,{data}\" style=\"max-width:600px\"><p>{caption}</p>'))",
    "md:## Every quarter, from the clinic's own export\n"
    "1. Export `patients`, `episodes`, `sessions` and `scores` (CSV or Excel) into one folder.\n"
    "2. Check it: `backpain-outcomes validate export/` lists every problem as `file:row:column: message`.\n"
    "   Fix the rows, or add `--exclude` to report on the valid rows (the report counts the rest).\n"
    "3. Produce the report for the quarter and the clinic:\n"
    "   `backpain-outcomes report export/ --clinic C1 --period 2025-01-01 2025-03-31 -o q1.pdf`.\n"
    "4. Therapists are shown as T1, T2... and counts under 5 are hidden; `--show-therapists` is for internal "
    "use only.",
    "q = bpo.clinic_report(study, pathlib.Path(tempfile.mkdtemp()) / 'c1.html', clinic='C1', "
    "period=('2021-01-01', '2022-12-31'), progress=False)\nprint(q.read_text().count('<h2>'), 'sections')",
])


if __name__ == "__main__":
    import sys
    if "--execute" in sys.argv:
        from nbclient import NotebookClient
        for path in sorted(NB.glob("*.ipynb")):
            nb = nbf.read(path, as_version=4)
            NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NB)}}).execute()
            nbf.write(nb, path)
            print("executed", path.name)
