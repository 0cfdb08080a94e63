"""Every count a clinic report publishes, registered in one :class:`~backpain_outcomes.disclosure.DisclosureLedger`.

Each episode of the report is classified once by every variable the report
tabulates: modality, chronicity, follow-up (``none``, ``once``,
``followed``: number of measurements of the report's instrument), the
outcome at the horizon (``not measured``, ``not improved``, ``improved``)
and resolution by the horizon (``not at risk``, ``not resolved``,
``resolved``). Every count of the outcome, follow-up, case-mix and claims
sections is a sum over this one cross-classification, so the ledger knows
each margin a reader can use. Quarters, therapists, other instruments, the
input rows and the numbers at risk under the curves are families of their
own, tied to the episodes by the totals they share.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .disclosure import DisclosureLedger
from .vocabulary import CHRONICITY_LEVELS, MODALITY_LEVELS, UNKNOWN, UNTREATED

__all__ = ["FOLLOW_UP", "OUTCOME", "RESOLUTION", "NO_VISIT", "episode_classes", "build_ledger", "quarter_of"]

FOLLOW_UP = ("none", "once", "followed")
OUTCOME = ("not measured", "not improved", "improved")
RESOLUTION = ("not at risk", "not resolved", "resolved")


#: The quarter of an episode without a first visit date (an episode with no score).
NO_VISIT = "no visit date"


def quarter_of(dates: pd.Series) -> pd.Series:
    """Calendar quarter of each date, as text: ``"2021 Q3"`` (``"no visit date"`` for a missing date).

    Examples
    --------
    >>> quarter_of(pd.Series(["2021-08-02", None])).tolist()
    ['2021 Q3', 'no visit date']
    """
    d = pd.to_datetime(pd.Series(dates))
    text = d.dt.year.astype("Int64").astype(str) + " Q" + d.dt.quarter.astype("Int64").astype(str)
    return text.where(d.notna(), NO_VISIT).astype(object)


def episode_classes(episodes: pd.DataFrame, n_meas: pd.Series, day: float, near: pd.DataFrame,
                    events: pd.DataFrame) -> pd.DataFrame:
    """One row per episode with ``modality``, ``chronicity``, ``quarter``, ``follow_up``, ``outcome``, ``resolution``.

    ``episodes`` is the episodes table of the report's episodes, ``n_meas`` their number of
    measurements of the report's instrument (indexed by ``episode_id``; missing means none), ``near``
    :func:`~backpain_outcomes.benchmarking.outcome_at_day` and ``events`` the table of
    :func:`~backpain_outcomes.resolution.time_to_resolution` of the same episodes.
    """
    ep = episodes
    n = ep["episode_id"].map(n_meas).fillna(0).to_numpy()
    resp = near.set_index("episode_id")["responder"]
    m = ep["episode_id"].map(resp)
    ev = events.set_index("episode_id")
    at_risk = ep["episode_id"].map(ev["at_risk"]).fillna(0).astype(bool).to_numpy()
    resolved = (ep["episode_id"].map(ev["resolved"]).fillna(0).astype(bool).to_numpy()
                & (ep["episode_id"].map(ev["day"]).to_numpy(float) <= day))
    return pd.DataFrame({
        "episode_id": ep["episode_id"].to_numpy(),
        "modality": ep["modality"].astype(str).to_numpy(),
        "treatment_status": ep["treatment_status"].astype(str).to_numpy(),
        "chronicity": ep["chronicity"].astype(str).to_numpy(),
        "quarter": quarter_of(ep["first_visit_date"]).to_numpy(),
        "follow_up": np.select([n == 0, n == 1], ["none", "once"], "followed"),
        "outcome": np.where(m.isna(), "not measured", np.where(m.fillna(0).astype(bool), "improved", "not improved")),
        "resolution": np.where(~at_risk, "not at risk", np.where(resolved, "resolved", "not resolved")),
    })


def _episode_cells(led: DisclosureLedger, classes: pd.DataFrame, mods, chrons) -> None:
    led.add_cell("all", "episodes")
    for st, who in (("treated", [m for m in mods if m not in (UNTREATED, UNKNOWN)]), (UNTREATED, [UNTREATED]),
                    (UNKNOWN, [UNKNOWN])):
        if [m for m in who if m in mods]:
            led.add_cell(f"status/{st}", "episodes", modality=[m for m in who if m in mods])
    for c in chrons:
        led.add_cell(f"chr/{c}", "episodes", chronicity=c)
    for scope, where in [("tot", {}), *[(f"mod/{m}", {"modality": m}) for m in mods]]:
        if scope != "tot":
            led.add_cell(f"{scope}/n", "episodes", **where)
        led.add_cell(f"{scope}/scored", "episodes", follow_up=["once", "followed"], **where)
        led.add_cell(f"{scope}/followed", "episodes", follow_up="followed", **where)
        led.add_cell(f"{scope}/measured", "episodes", outcome=["not improved", "improved"], **where)
        led.add_cell(f"{scope}/improved", "episodes", outcome="improved", **where)
        led.add_cell(f"{scope}/not_improved", "episodes", shown=False, outcome="not improved", **where)
        led.add_cell(f"{scope}/at_risk", "episodes", resolution=["not resolved", "resolved"], **where)
        led.add_cell(f"{scope}/resolved", "episodes", resolution="resolved", **where)
        led.add_cell(f"{scope}/unresolved", "episodes", shown=False, resolution="not resolved", **where)
    if UNTREATED in mods and "chronic" in chrons:
        led.add_cell("c3/at_risk", "episodes", modality=UNTREATED, chronicity="chronic",
                     resolution=["not resolved", "resolved"])


def _quarter_cells(led: DisclosureLedger, classes: pd.DataFrame) -> None:
    quarters = sorted(classes["quarter"].unique())
    led.add_family("quarters", classes, {"quarter": quarters, "outcome": OUTCOME})
    for q in quarters:
        led.add_cell(f"q/{q}/n", "quarters", quarter=q)
        led.add_cell(f"q/{q}/measured", "quarters", quarter=q, outcome=["not improved", "improved"])
        led.add_cell(f"q/{q}/improved", "quarters", quarter=q, outcome="improved")
        led.add_cell(f"q/{q}/not_improved", "quarters", shown=False, quarter=q, outcome="not improved")
    for lv in OUTCOME:  # the quarters hold the same episodes as the modalities
        led.add_cell(f"q/outcome/{lv}", "quarters", shown=False, sensitive=False, outcome=lv)
        led.add_cell(f"ep/outcome/{lv}", "episodes", shown=False, sensitive=False, outcome=lv)
        led.add_relation({f"q/outcome/{lv}": 1, f"ep/outcome/{lv}": -1})


def _therapist_cells(led: DisclosureLedger, classes: pd.DataFrame, caseload: pd.Series) -> None:
    """Episodes per therapist (hidden caseloads included: a reader knows each is under ``min_n``)."""
    base = classes[(classes["treatment_status"] == "treated") & (classes["outcome"] != "not measured")]
    if caseload.empty or not caseload.index.isin(base["episode_id"]).all():
        return
    units = pd.DataFrame({"caseload": base["episode_id"].map(caseload).fillna("(none)").to_numpy()})
    levels = sorted(units["caseload"].unique())
    led.add_family("therapists", units, {"caseload": levels})
    for lv in levels:
        if lv != "(none)":
            led.add_cell(f"ther/{lv}", "therapists", caseload=lv)
    led.add_cell("ther/all", "therapists", shown=False, sensitive=False)
    treated = sorted(set(base["modality"]))
    led.add_cell("ep/treated_measured", "episodes", shown=False, sensitive=False, modality=treated,
                 outcome=["not improved", "improved"])
    led.add_relation({"ther/all": 1, "ep/treated_measured": -1})


def _row_cells(led: DisclosureLedger, flow: pd.DataFrame) -> None:
    """Input rows read = used + excluded by reason, per table."""
    units = []
    for table, g in flow[flow["table"] != ""].groupby("table", sort=False):
        read = g.loc[g["stage"] == "rows read", "n"]
        used = g.loc[g["stage"] == "rows used", "n"]
        if read.empty or used.empty or pd.isna(used.iloc[0]):
            continue
        excl = g[g["stage"].str.startswith("rows excluded: ")]
        parts = [("used", int(used.iloc[0]))] + [(s.split(": ", 1)[1], int(v)) for s, v in zip(excl["stage"], excl["n"])]
        if sum(v for _, v in parts) != int(read.iloc[0]):
            continue
        units += [(table, fate, v) for fate, v in parts]
    if not units:
        return
    frame = pd.DataFrame(units, columns=["table", "fate", "n"])
    led.add_family("rows", frame, {"table": list(dict.fromkeys(frame["table"])),
                                   "fate": list(dict.fromkeys(frame["fate"]))}, weight="n")
    for rec in frame.itertuples():
        led.add_cell(f"rows/{rec.table}/{rec.fate}", "rows", table=rec.table, fate=rec.fate)
    for table in dict.fromkeys(frame["table"]):
        led.add_cell(f"rows/{table}/read", "rows", table=table)


def _instrument_cells(led: DisclosureLedger, others: dict) -> None:
    """Other instruments (pain and function table): episodes scored, measured at the horizon, improved."""
    for inst, (scored, measured, improved) in others.items():
        units = pd.DataFrame({"status": ["scored", "not improved", "improved"],
                              "n": [scored - measured, measured - improved, improved]})
        led.add_family(f"inst/{inst}", units, {"status": ["scored", "not improved", "improved"]}, weight="n")
        led.add_cell(f"inst/{inst}/scored", f"inst/{inst}")
        led.add_cell(f"inst/{inst}/measured", f"inst/{inst}", status=["not improved", "improved"])
        led.add_cell(f"inst/{inst}/improved", f"inst/{inst}", status="improved")
        led.add_cell(f"inst/{inst}/not_improved", f"inst/{inst}", shown=False, status="not improved")
        led.add_relation({"all": 1, f"inst/{inst}/scored": -1}, 0, np.inf)


def build_ledger(classes: pd.DataFrame, min_n: int, *, flow: pd.DataFrame, caseload: pd.Series,
                 at_risk: dict, others: dict, c3_events: int | None, same_instrument: bool) -> DisclosureLedger:
    """The report's ledger, suppressed and audited.

    Parameters
    ----------
    classes : DataFrame
        :func:`episode_classes`.
    min_n : int
    flow : DataFrame
        ``Study.flow()`` of the loaded data.
    caseload : Series
        Episode id -> therapist label (``"hidden k"`` for caseloads not shown).
    at_risk : dict
        ``(modality, day) -> episodes at risk`` printed under the curves.
    others : dict
        Instrument -> (scored, measured, improved) for the pain and function table.
    c3_events : int, optional
        Untreated chronic episodes resolved within a year.
    same_instrument : bool
        Whether the resolution rule uses the report's instrument (then an episode at risk has follow-up).
    """
    led = DisclosureLedger(min_n)
    mods = [m for m in MODALITY_LEVELS if m in set(classes["modality"])]
    chrons = [c for c in CHRONICITY_LEVELS if c in set(classes["chronicity"])]
    led.add_family("episodes", classes, {"modality": mods, "chronicity": chrons, "follow_up": FOLLOW_UP,
                                         "outcome": OUTCOME, "resolution": RESOLUTION},
                   zeros=[{"follow_up": ["none", "once"], "outcome": ["not improved", "improved"]}]
                   + ([{"follow_up": ["none", "once"], "resolution": ["not resolved", "resolved"]}] if same_instrument else []))
    _episode_cells(led, classes, mods, chrons)
    _quarter_cells(led, classes)
    _therapist_cells(led, classes, caseload)
    _row_cells(led, flow)
    _instrument_cells(led, others)
    if c3_events is not None and "c3/at_risk" in led.cells:
        n = led.value("c3/at_risk")
        units = pd.DataFrame({"within_a_year": ["yes", "no"], "n": [c3_events, n - c3_events]})
        led.add_family("c3", units, {"within_a_year": ["yes", "no"]}, weight="n")
        led.add_cell("c3/resolved_365", "c3", within_a_year="yes")
        led.add_cell("c3/unresolved_365", "c3", shown=False, within_a_year="no")
        led.add_cell("c3/all", "c3", shown=False, sensitive=False)
        led.add_relation({"c3/all": 1, "c3/at_risk": -1})
    if at_risk:
        units = pd.DataFrame([(f"{m}@{d:g}", v) for (m, d), v in at_risk.items()], columns=["point", "n"])
        led.add_family("at_risk", units, {"point": list(units["point"])}, weight="n")
        for k in units["point"]:
            led.add_cell(f"risk/{k}", "at_risk", point=k)
    return led.suppress()
