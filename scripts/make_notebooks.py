"""Write the notebooks in notebooks/ from the cell sources below.

Run: python scripts/make_notebooks.py --execute [--output DIR]

``--execute`` runs every notebook and stores its outputs (the committed notebooks
carry them: the docs render them and a test reads a number from them); without it
the notebooks are written without outputs. ``--output DIR`` writes them into DIR
instead of notebooks/.

Every number of the narrative comes from code: a markdown cell holds no hand-typed
result (tests/test_notebooks.py scans them). Numbers that depend on the data are
printed, or written as Markdown by a code cell (``display(Markdown(...))``).
"""

import argparse
from pathlib import Path

import nbformat as nbf

NB = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS: dict[str, list[str]] = {}


def write(name, cells):
    """Register a notebook: its cells, markdown ones prefixed with ``md:``."""
    NOTEBOOKS[name] = cells


def notebook(name) -> nbf.NotebookNode:
    """The notebook ``name`` without outputs."""
    nb = nbf.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbf.v4.new_markdown_cell(c[3:]) if c.startswith("md:") else nbf.v4.new_code_cell(c)
                for c in NOTEBOOKS[name]]
    return nb


write("01_quickstart.ipynb", [
    "md:# Quick start\nLoad the shipped example study (simulated), look at what was loaded and "
    "what was excluded, and plot raw pain trajectories by modality.",
    "%matplotlib inline\nimport matplotlib.pyplot as plt\nimport pandas as pd\nimport backpain_outcomes as bpo\n"
    "from backpain_outcomes.style import colour\n"
    "study = bpo.load_study(bpo.example_path())\nprint(study.summary())",
    "md:## Flow counts\nRows read = rows used + rows excluded, per table; then the episodes by treatment status. "
    "An episode is *untreated* only when the data say so (an `arm` of the episodes table, a \"no treatment\" "
    "session row, or `load_study(..., no_sessions=\"untreated\")`); otherwise its status is *unknown*.",
    "study.flow()",
    "md:## Episodes by modality and chronicity\nChronicity is measured from onset to first contact; "
    "the column labels give the bands.",
    "ep = study.episodes.assign(modality=study.episodes['modality'].map(bpo.label),\n"
    "                           chronicity=study.episodes['chronicity'].map(bpo.label))\n"
    "pd.crosstab(ep['modality'], ep['chronicity'], margins=True, margins_name='Total')",
    "md:## Raw NRS trajectories by modality (days since first contact, the first episodes of each)",
    "shown = 40  # episodes drawn per modality\n"
    "frame = study.analysis_frame('nrs', origin='first_contact', include_baseline=True)\n"
    "mods = list(frame['modality'].cat.categories)\n"
    "fig, axes = plt.subplots(2, 3, figsize=(12, 6), sharex=True, sharey=True, layout='constrained')\n"
    "for ax, mod in zip(axes.flat, mods):\n"
    "    sub = frame[frame['modality'] == mod]\n"
    "    for _, g in list(sub.groupby('episode_id'))[:shown]:\n"
    "        ax.plot(g['day'], g['score'], color=colour(mod), alpha=0.3, lw=0.8)\n"
    "    ax.set_title(bpo.label(mod)); ax.set_xlim(0, 200); ax.set_ylim(0, 10)\n"
    "fig.suptitle(f'{shown} episodes per modality')\n"
    "fig.supxlabel('days since first contact'); fig.supylabel(bpo.label('nrs'));",
    "md:## What a user sees when a file is broken\nEvery problem is listed at once, as "
    "`file:row:column: message (got VALUE, expected ...)`.",
    "import tempfile, pathlib\nd = pathlib.Path(tempfile.mkdtemp())\n"
    "(d / 'scores.csv').write_text('patient_id,date,instrument,score\\n'\n"
    "    'p1,2024-01-05,NPRS,7\\np1,03/04/2024,nrs,5\\np2,2024-01-05,VAS (mm),120\\np3,2024-02-01,SF-36,50\\n')\n"
    "try:\n    bpo.load_study(d)\nexcept bpo.DataValidationError as err:\n    problems = err.problems\n"
    "problems[['source', 'row', 'column', 'value', 'reason']]",
    "md:A hurried argument gets the same treatment: the error names the argument and the valid choices.",
    "try:\n    bpo.test_resolution_claim(study, claimed=90)\nexcept ValueError as err:\n    print(err)",
])

write("03_does_back_pain_resolve_on_its_own.ipynb", [
    "md:# Does back pain resolve on its own?\nThe popular claim: *almost 90% of back-pain episodes resolve on "
    "their own*. In the literature that figure is a consultation statistic (Croft et al. 1998, BMJ: about 90% "
    "stopped consulting by 3 months, 21% had completely recovered). Here the claim (`claimed=0.90`) is tested "
    "with censoring, delayed entry and an explicit definition of *resolved* (default `rule=\"nrs<=1 x2\"`: "
    "NRS `<= 1` on two consecutive visits), timed from pain onset.",
    "%matplotlib inline\nimport matplotlib.pyplot as plt\nimport pandas as pd\n"
    "import backpain_outcomes as bpo\nstudy = bpo.load_study(bpo.example_path())\n"
    "claim = bpo.test_resolution_claim(study, claimed=0.90, day=42, rule='nrs<=1 x2')\n"
    "print(claim.verdict)\n"
    "print(f'UNTREATED_DAY42_ESTIMATE={claim.estimate:.10f}')",
    "md:Every caveat of the estimate is on the result:",
    "for note in claim.notes:\n    print('-', note)",
    "md:## Cumulative resolution by modality (left-truncated Kaplan-Meier, from onset)",
    "curve = bpo.resolution_curve(study, 'nrs<=1 x2', by='modality', day=[42])\nax = curve.plot(claimed=0.90)",
    "md:With six groups one panel cannot show every interval; the same curves as small multiples, each modality "
    "beside the untreated episodes, both with their confidence bands and numbers at risk:",
    "axes = bpo.plot_resolution_panels(curve)",
    "md:## Sensitivity: how the answer moves with the definition, origin and relapse handling\n"
    "Each cell is the estimated share of untreated episodes resolved by that day.",
    "ax = claim.plot_sensitivity()",
    "lo, hi = claim.sensitivity_range\n"
    "print(f'Across the {claim.sensitivity[\"rule\"].nunique()} definitions, both origins and both ways of '\n"
    "      f'handling relapse, the day-{claim.day:g} estimate ranges from {lo:.0%} to {hi:.0%}.')",
    "md:## Every claim of the project",
    "report = bpo.evaluate_seed_claims(study)\nreport.table[['claim', 'comparison', 'estimate', 'ci_low', 'ci_high', "
    "'p_holm', 'verdict']]",
    "md:## A world where the claim is true, and one where it is false\nThe simulator sets the true share of "
    "untreated episodes resolved by the horizon, from first contact (`untreated_resolved_by_42`). The test should "
    "not reject when the truth is the claimed share and should reject when it is lower.",
    "rows = []\nfor truth in (0.90, 0.70):\n    s, t = bpo.simulate_study(800, seed=4, untreated_share=0.4, "
    "untreated_resolved_by_42=truth)\n    c = bpo.test_resolution_claim(s, origin='first_contact', sensitivity=False)\n"
    "    rows.append({'true': truth, 'estimate': c.estimate, 'ci_low': c.ci_low, 'ci_high': c.ci_high, "
    "'verdict': c.verdict_code})\npd.DataFrame(rows)",
    "md:### Power: untreated episodes needed to refute the claim\nThe normal approximation on the "
    "complementary log-log scale of the test (fast), and the sample size for the chosen power (`power=0.8`) at "
    "several true rates.",
    "power = bpo.claim_power([10, 20, 30, 50, 100], [0.5, 0.7, 0.8], method='formula')\nax = power.plot()",
    "pd.concat([bpo.claim_sample_size(r, power=0.8, method='formula').table for r in (0.5, 0.7, 0.8)])",
    "md:## Real data: Anderson (1984)\nPatients with back pain, progress three weeks after treatment "
    "(R package gnm, `backPain`), loaded through the package as a global rating of change (`ANDERSON_SCALE`, "
    "from complete relief to worse). What share had complete relief, or marked improvement or better? Wilson "
    "intervals.",
    "from IPython.display import Markdown, display\n"
    "from statsmodels.stats.proportion import proportion_confint\n"
    "from backpain_outcomes.datasets import ANDERSON_SCALE, load_anderson1984\n"
    "from backpain_outcomes.ordinal import fit_grc_model\n"
    "anderson = load_anderson1984()\nrating = anderson.scores['score']\nn = len(rating)\nout = []\n"
    "display(Markdown(f'{n} patients; ratings ' + ', '.join(f'{i} = {s}' for i, s in enumerate(ANDERSON_SCALE, 1))"
    " + '.'))\n"
    "for label, k in [('complete relief', int((rating == 1).sum())),\n"
    "                 ('marked improvement or complete relief', int((rating <= 2).sum()))]:\n"
    "    lo, hi = proportion_confint(k, n, method='wilson')\n"
    "    out.append({'outcome at 3 weeks': label, 'n': n, 'events': k, 'share': k / n, 'ci_low': lo, 'ci_high': hi})\n"
    "anderson_table = pd.DataFrame(out)\nanderson_table",
    "md:The ratings by prognostic group (`x1`), in a proportional-odds model adjusted for `x2` and `x3` "
    "(statsmodels `OrderedModel`), with per-cut logistic fits to check the proportional-odds assumption.",
    "grc = fit_grc_model(anderson, by='x1', reference=1, adjust=['x2', 'x3'], scale=ANDERSON_SCALE)\n"
    "ax = grc.plot()\ngrc.table",
    "r = anderson_table.iloc[1]; c = anderson_table.iloc[0]\n"
    "print(f'Even with a lenient definition (marked improvement or better), {r.share:.0%} '\n"
    "      f'(95% CI {r.ci_low:.0%}-{r.ci_high:.0%}) of these treated patients had resolved at three weeks, '\n"
    "      f'well under 90%; complete relief {c.share:.0%} ({c.ci_low:.0%}-{c.ci_high:.0%}).')",
])

write("02_recovery_curves_by_modality.ipynb", [
    "md:# Recovery curves by modality\nEach group's pain follows `plateau + (b0 - plateau) * exp(-day / tau)`; "
    "the half-life is `tau * ln 2`. Time runs from pain onset, as everywhere in the package. Standard errors "
    "are clustered by episode (repeated measures).",
    "%matplotlib inline\nimport matplotlib.pyplot as plt\nimport pandas as pd\n"
    "import backpain_outcomes as bpo\nfrom backpain_outcomes.style import colour\n"
    "study = bpo.load_study(bpo.example_path())\n"
    "curves = bpo.fit_recovery_curves(study, by='modality', progress=False)\n"
    "curves.table[['modality', 'b0', 'plateau', 'tau_days', 'half_life_days', 'half_life_days_ci_low', "
    "'half_life_days_ci_high', 'n_episodes', 'converged']].round(2)",
    "md:## Curves with the natural course of Costa et al. 2012 overlaid\nThe black lines are the published mean "
    "pain (0-100, divided by 10) of acute and persistent low back pain, also from onset.",
    "ax = curves.plot(reference='costa2012')",
    "for note in curves.notes:\n    print('-', note)",
    "md:## By chronicity\nA group whose decay time cannot be identified raises a `ConvergenceWarning`; here the "
    "warnings are caught and printed with the result, so that they are read with it (they are also in "
    "`by_chron.notes`).",
    "import warnings\n"
    "with warnings.catch_warnings(record=True) as caught:\n"
    "    warnings.simplefilter('always')\n"
    "    by_chron = bpo.fit_recovery_curves(study, by='chronicity', progress=False)\n"
    "for w in caught:\n    print(f'{w.category.__name__}: {w.message}')\n"
    "ax = by_chron.plot(reference=None)\n"
    "by_chron.table[['chronicity', 'b0', 'plateau', 'tau_days', 'converged', 'note']]",
    "from IPython.display import Markdown\n"
    "from backpain_outcomes.vocabulary import CHRONIC_DAYS\n"
    "chronic = by_chron.table.set_index('chronicity').loc['chronic']\n"
    "Markdown(f'Chronic episodes, timed from onset, enter after day {CHRONIC_DAYS} with pain that has already '\n"
    "         'levelled off: from onset their mean shows no decay within follow-up, so the decay time is not '\n"
    "         'identified and the fit says so (the warning above and the `note` column) instead of reporting a '\n"
    "         'number. `origin=\"first_contact\"` asks the other question, recovery from the start of care.'\n"
    "         if not chronic['converged'] else\n"
    "         f'Chronic episodes, timed from onset, enter after day {CHRONIC_DAYS}; their decay time is '\n"
    "         f'{chronic[\"tau_days\"]:.1f} days.')",
    "md:## Per-episode half-lives\nEvery episode fitted on its own (batched Levenberg-Marquardt); episodes with "
    "fewer than four measurements, or whose decay time is not identified, are listed rather than dropped.",
    "ep = bpo.fit_episode_curves(study)\nprint(ep.table['converged'].value_counts())\n"
    "fig, ax = plt.subplots(figsize=(7, 4), layout='constrained')\n"
    "for mod, g in ep.table[ep.table['converged']].groupby('modality', observed=True):\n"
    "    ax.hist(g['half_life_days'].clip(upper=60), bins=30, histtype='step', label=bpo.label(mod), color=colour(mod))\n"
    "ax.set_xlabel('half-life (days, clipped at 60)'); ax.set_ylabel('episodes'); ax.legend(fontsize=8);",
    "md:## Longitudinal mixed model\nRandom intercept and slope per episode; the fast engine gives the same "
    "estimates as lme4 and statsmodels. A straight line is a fair summary only early in an episode, so the model "
    "uses only the scores within `WEEKS = 12` weeks of onset; time is in weeks, so a slope is the change in NRS per "
    "week. Each estimate has its confidence interval and p-value.",
    "WEEKS = 12\n"
    "frame = study.analysis_frame('nrs').assign(week=lambda d: d['day'] / 7)\n"
    "early = frame[frame['week'] <= WEEKS]\n"
    "m = bpo.fit_mixed_model(early, 'score ~ week * modality + baseline', re_formula='~ week', time='week')\n"
    "print(f\"{len(early)} scores of {early['episode_id'].nunique()} episodes within {WEEKS} weeks of onset\")\n"
    "m.table.round(3)",
    "import numpy as np\n"
    "slope = m.table.set_index('term').loc['week']\n"
    "sd = np.sqrt(np.diag(m.cov_re))\n"
    "print(f\"Untreated episodes: NRS changes by {slope['estimate']:.2f} points per week \"\n"
    "      f\"(95% CI {slope['ci_low']:.2f} to {slope['ci_high']:.2f}, p = {slope['p_value']:.2g}).\")\n"
    "print(f\"Between episodes, the starting level varies with SD {sd[0]:.2f} points and the weekly slope with SD \"\n"
    "      f\"{sd[1]:.2f} points (correlation {m.cov_re.iloc[0, 1] / sd[0] / sd[1]:.2f}).\")",
    "ax = m.plot()",
    "md:## Modalities compared with untreated episodes at the horizon (`day=42`)",
    "cmp = bpo.compare_modalities(study, instrument='nrs', day=42)\n"
    "cmp.table[['modality', 'difference', 'ci_low', 'ci_high', 'p_holm', 'responder_rate', 'hazard_ratio', 'n']].round(3)",
    "ax = cmp.plot()",
    "t = cmp.table.dropna(subset=['ci_low'])\nexcl = t[(t['ci_high'] < 0) | (t['ci_low'] > 0)]\n"
    "print(f'{len(excl)} of {len(t)} adjusted differences have a 95% interval that excludes zero'\n"
    "      + (': ' + ', '.join(map(bpo.label, excl['modality'])) if len(excl) else '') + '. '\n"
    "      'Negative differences mean lower pain than untreated episodes after adjusting for baseline pain and '\n"
    "      'chronicity; these are observational associations, not randomised comparisons.')",
])

write("04_trajectory_subgroups.ipynb", [
    "md:# Trajectory subgroups\nA latent class growth model finds groups of episodes with similar pain "
    "courses. Dunn, Jordan & Croft (2006) found four in primary care: persistent mild, recovering, severe "
    "chronic and fluctuating (their shares are compared with ours below). The number of classes is chosen from "
    "the enumeration table.",
    "%matplotlib inline\nimport matplotlib.pyplot as plt\nimport pandas as pd\n"
    "import backpain_outcomes as bpo\nstudy = bpo.load_study(bpo.example_path())\n"
    "traj = bpo.fit_trajectories(study, instrument='nrs', k=range(1, 6), n_init=10, seed=0,\n"
    "                            origin='first_contact', day=365)\n"
    "print(traj.explanation)\ntraj.table.round(3)",
    "fig, ax = plt.subplots(figsize=(6, 3.5))\nax.plot(traj.table['k'], traj.table['bic'], 'o-')\n"
    "ax.set_xticks(traj.table['k'])\nax.set_xlabel('number of classes k'); ax.set_ylabel('BIC (lower is better)');",
    "md:## The chosen classes",
    "traj.sizes.round(3)",
    "ax = traj.plot(n_spaghetti=120)",
    "md:## Classes by modality and chronicity (row percentages)",
    "traj.crosstab('modality').attrs['percent'].round(0)",
    "traj.crosstab('chronicity').attrs['percent'].round(0)",
    "md:## Comparison with Dunn 2006\nThe four-class solution, next to the shares Dunn et al. reported "
    "(the example study is simulated with these four shapes plus treatment effects).",
    "four = traj.select(4)\n"
    "dunn = pd.DataFrame({'Dunn 2006 class': ['persistent mild', 'recovering', 'severe persistent', 'fluctuating'],\n"
    "                     'Dunn 2006 share': [0.357, 0.304, 0.208, 0.132]})\n"
    "ours = four.sizes[['label', 'share']].sort_values('share', ascending=False).reset_index(drop=True)\n"
    "dunn = dunn.sort_values('Dunn 2006 share', ascending=False).reset_index(drop=True)\n"
    "side = pd.concat([ours.rename(columns={'label': 'class here (k = 4)', 'share': 'share here'}), dunn], axis=1)\n"
    "side['difference'] = side['share here'] - side['Dunn 2006 share']\n"
    "side.round(3)",
    "big = side.loc[side['difference'].abs().idxmax()]\n"
    "print(f\"Ranked by size, the largest gap is {big['class here (k = 4)']} at {big['share here']:.0%} here against \"\n"
    "      f\"{big['Dunn 2006 class']} at {big['Dunn 2006 share']:.0%} in Dunn 2006 ({big['difference']:+.0%}). \"\n"
    "      'The example study is simulated with a higher recovering share and with treatment effects, so its '\n"
    "      'classes need not reproduce the primary-care shares.')\n"
    "print(f'Best k by BIC here: {traj.best_k}; ' + ('the simulated four shapes were recovered as four classes.' "
    "if traj.best_k == 4 else f'{traj.best_k} classes fit better than four: with treatment effects on top of the '\n"
    "      'four simulated shapes, a class splits (two recovery classes starting at different levels), which is why the '\n"
    "      'enumeration table, not a fixed k, decides.'))",
    "md:In real data the number and shape of classes is an empirical question (Kongsted 2015 found 5 to 12 "
    "depending on the model).",
])

write("05_clinic_report.ipynb", [
    "md:# The clinic report\nOne command turns a clinic's export into a report its staff can read: "
    "`backpain-outcomes report DIR -o report.html` (or `report.pdf` with Chromium installed). Its content is "
    "computed once (`bpo.report_content`), so every number can be inspected before any HTML is written.",
    "import tempfile, pathlib\nimport backpain_outcomes as bpo\nstudy = bpo.load_study(bpo.example_path())\n"
    "content = bpo.report_content(study, clinic='C1', progress=False)\n"
    "for line in content.config.lines():\n    print(line)",
    "md:## The first page: key outcomes next to what this clinic's case mix predicts\nExpected values come "
    "from models fitted on all clinics of the data; the range is where the clinic's figure would fall if it did "
    "exactly as expected.",
    "content.tables['key_outcomes']",
    "print(content.text['responders_vs_resolved'][0] if isinstance(content.text['responders_vs_resolved'], list) "
    "else content.text['responders_vs_resolved'])",
    "md:## The same number as the API\nThe report's untreated resolution by its horizon (`day=42`) is the claim "
    "test with the report's configuration.",
    "from IPython.display import Markdown, display\n"
    "one = content.numbers['untreated_resolution']\n"
    "shown = 'published' if one['published'] else 'not published in its report'\n"
    "display(Markdown(f\"Clinic `C1`'s untreated row ({one['n']} episodes) is {shown}; here on the whole study:\"))\n"
    "whole = bpo.report_content(study, progress=False)\nu = whole.numbers['untreated_resolution']\n"
    "claim = bpo.test_resolution_claim(study, 0.90, day=42, population='untreated', sensitivity=False)\n"
    "print(f\"report: {u['estimate']:.4f} (95% CI {u['ci_low']:.4f}-{u['ci_high']:.4f}); \"\n"
    "      f\"test_resolution_claim: {claim.estimate:.4f} ({claim.ci_low:.4f}-{claim.ci_high:.4f})\")",
    "content.tables['outcomes']",
    "md:## Disclosure control\nCounts under `min_n` (default `5`) are printed as `<5` (primary suppression). Then the report plays "
    "the attacker: from every published count, total and margin it solves for the bounds of each hidden count "
    "(linear and integer programming) and hides more counts, marked \"suppressed\", until none can be recovered.",
    "ledger = content.ledger.table()\nhidden = ledger.query(\"shown and status != 'published'\")\n"
    "print(f\"{(hidden['text'] == '<5').sum()} counts shown as '<5', {(hidden['text'] == 'suppressed').sum()} \"\n"
    "      'further counts suppressed so that none of them can be recomputed')\nhidden[['family', 'text']].head(10)",
    "content.tables['trend']",
    "md:## Writing it\nThe HTML is self-contained (no network); PDF needs headless Chromium.",
    "out = bpo.clinic_report(study, pathlib.Path(tempfile.mkdtemp()) / 'report.html', clinic='C1', progress=False)\n"
    "print(out.name, out.stat().st_size, 'bytes')",
    "md:## Every quarter, from the clinic's own export\n"
    "1. Export `patients`, `episodes`, `sessions` and `scores` (CSV or Excel) into one folder.\n"
    "2. Check it: `backpain-outcomes validate export/` lists every problem as `file:row:column: message`.\n"
    "   Fix the rows, or add `--exclude` to report on the valid rows (the report counts the rest).\n"
    "3. Produce the report for the quarter and the clinic:\n"
    "   `backpain-outcomes report export/ --clinic C1 --period 2025-01-01 2025-03-31 -o q1.pdf`.\n"
    "4. Therapists are shown as `T1`, `T2`... and small counts are hidden with everything that would reveal "
    "them; `--show-therapists` is for internal use only.",
])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--execute", action="store_true", help="run the notebooks and store their outputs")
    parser.add_argument("--output", type=Path, default=NB, help="directory to write into (default notebooks/)")
    args = parser.parse_args(argv)
    args.output.mkdir(parents=True, exist_ok=True)
    for name in NOTEBOOKS:
        nb = notebook(name)
        if args.execute:
            from nbclient import NotebookClient
            NotebookClient(nb, timeout=600, kernel_name="python3",
                           resources={"metadata": {"path": str(args.output)}}).execute()
        nbf.write(nb, args.output / name)
        print("executed" if args.execute else "wrote", args.output / name)


if __name__ == "__main__":
    main()
