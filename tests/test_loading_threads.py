"""Loading in two threads (two_threads.alongside, in loading and checking): results as when the tables were read
and checked one after the other, whatever the timing, for callers in threads of their own, with the caller's
warnings, errors and context."""

import contextlib
import random
import sys
import threading
import time
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import TODAY, write

import backpain_outcomes as bpo
from backpain_outcomes import checking, loading, two_threads
from backpain_outcomes.exceptions import DataValidationError, ExcludedRowsWarning

_TABLES = {
    "patients.csv": "patient_id,age,sex\np1,40,F\np2,150,M\np2,41,M\np3,x,F\np4,33,N/A\n",
    "episodes.csv": "episode_id,patient_id,onset_date\ne1,p1,2024-01-01\ne2,p2,2024-13-01\ne3,p3,2024-02-01\n"
                    "e4,p9,2024-02-01\ne5,p4,\ne6,p4,2024-03-01\n",
    "sessions.csv": "patient_id,episode_id,session_date,modality\np1,e1,2024-01-03,swedish\np1,e1,2024-01-03,swedish\n"
                    "p3,e3,2023-01-01,hot stones\np2,e2,2024-03-01,cupping\np4,,2024-03-02,cupping\n",
    "scores.csv": "patient_id,date,instrument,score,episode_id\np1,2024-01-02,nrs,6,e1\np1,2024-01-02,nrs,6,e1\n"
                  "p1,2024-01-09,nrs,12,e1\np2,2024-03-01,odi,30,e2\np3,2024-02-05,vas,x,e3\np9,2024-02-05,nrs,3,e4\n"
                  "p1,2024-01-10,grc,9,e1\np4,2024-03-05,nrs,4,\np4,2024-02-05,nrs,4,\np1,2031-01-01,nrs,2,e1\n",
}
_NAMES = ["validate_scores", "validate_patients", "validate_episodes", "validate_sessions", "set_aside_duplicates",
          "conflicting_ids", "link_parents", "link_rows", "read_part", "blank_missing_marks"]


@pytest.fixture
def study_dir(tmp_path):
    for name, text in _TABLES.items():
        write(tmp_path / name, text)
    return tmp_path


def _result(path, errors, record=True):
    """What a load gives, problems (category order included) or the Study's tables, notes and warnings (not
    recorded in threads of the caller: ``catch_warnings`` is not thread-safe)."""
    with warnings.catch_warnings(record=True) if record else contextlib.nullcontext([]) as caught:
        if record:
            warnings.simplefilter("always")
        try:
            s = bpo.load_study(path, errors=errors, today=TODAY)
        except DataValidationError as err:
            return {"problems": err.problems, "text": str(err)}
    out = {n: getattr(s, n) for n in ("patients", "episodes", "sessions", "scores", "exclusions", "blanked_values",
                                      "same_day_scores")}
    return {**out, "flow": s.flow(), "notes": s.notes, "sources": s.sources,
            **({"warnings": [(w.category, str(w.message)) for w in caught]} if record else {})}


def _assert_same(got, expected):
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(got[key], value, check_exact=True)
            for col in value.columns:  # the same categories in the same order
                if isinstance(value[col].dtype, pd.CategoricalDtype):
                    assert list(got[key][col].cat.categories) == list(value[col].cat.categories), (key, col)
        else:
            assert got[key] == value, key


def _two_cpus(monkeypatch):
    monkeypatch.setattr(two_threads, "processors", lambda: 2)


def test_one_file_given_for_two_tables_is_read_for_each_with_its_sheet(tmp_path):
    """One workbook (the same path object) given for two tables, each with its sheet: the reads of the two
    threads were kept by input only, so the patients table was the scores sheet, silently."""
    wb = str(tmp_path / "study.xlsx")
    with pd.ExcelWriter(wb) as w:
        pd.DataFrame({"patient_id": ["p1", "p2"], "age": [40, 50]}).to_excel(w, sheet_name="P", index=False)
        pd.DataFrame({"patient_id": ["p1", "p2"], "date": ["2024-01-02", "2024-01-03"], "instrument": ["nrs", "nrs"],
                      "score": [5, 6]}).to_excel(w, sheet_name="S", index=False)
        pd.DataFrame({"episode_id": ["e1", "e2"], "patient_id": ["p1", "p2"],
                      "onset_date": ["2024-01-01", "2024-01-01"]}).to_excel(
            w, sheet_name="E", index=False)
    study = bpo.load_study(patients=wb, episodes=wb, scores=wb, today=TODAY,
                           sheet={"patients": "P", "episodes": "E", "scores": "S"})
    assert study.patients["age"].tolist() == [40, 50] and "date" not in study.patients
    assert study.episodes["episode_id"].tolist() == ["e1", "e2"] and len(study.scores) == 2


@pytest.mark.parametrize("errors", ["raise", "exclude"])
def test_results_do_not_depend_on_thread_timing(study_dir, monkeypatch, errors):
    """Random sleeps around every step of both threads (and a short switch interval): the same problems
    (category order included), Study, notes and warnings every time."""
    _two_cpus(monkeypatch)
    expected = _result(study_dir, errors)
    assert ("problems" in expected) == (errors == "raise")
    rng = random.Random(7)
    interval = sys.getswitchinterval()
    try:
        sys.setswitchinterval(1e-5)
        for _ in range(3):
            for name in _NAMES:
                module = loading if name == "read_part" else checking
                real, pause = getattr(module, name), rng.random() * 0.005

                def slowed(*args, _real=real, _pause=pause, **kwargs):
                    time.sleep(_pause)
                    return _real(*args, **kwargs)
                monkeypatch.setattr(module, name, slowed)
            _assert_same(_result(study_dir, errors), expected)
            monkeypatch.undo()
            _two_cpus(monkeypatch)
    finally:
        sys.setswitchinterval(interval)


def test_the_callers_warnings_are_kept_when_both_threads_enter_catch_warnings(study_dir, monkeypatch):
    """pandas enters warnings.catch_warnings in many operations, which is not thread-safe: with the two threads
    entering and leaving it interleaved (as here, step by step), the second thread put back the first one's
    recording list, which then swallowed the ExcludedRowsWarning and every later warning of the process."""
    _two_cpus(monkeypatch)
    steps = [threading.Event() for _ in range(3)]
    real_scores, real_patients = checking.validate_scores, checking.validate_patients

    def scores(*args, **kwargs):  # this thread
        with warnings.catch_warnings(record=True):
            steps[0].set()
            steps[1].wait(2)
        steps[2].set()
        return real_scores(*args, **kwargs)

    def patients(*args, **kwargs):  # the second thread
        steps[0].wait(2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            steps[1].set()
            steps[2].wait(2)
        return real_patients(*args, **kwargs)

    monkeypatch.setattr(checking, "validate_scores", scores)
    monkeypatch.setattr(checking, "validate_patients", patients)
    filters, show = list(warnings.filters), warnings.showwarning
    with pytest.warns(ExcludedRowsWarning):
        bpo.load_study(study_dir, errors="exclude", today=TODAY)
    assert warnings.filters == filters and warnings.showwarning is show
    with pytest.warns(UserWarning, match="still seen"):
        warnings.warn("still seen", UserWarning, stacklevel=1)


def test_an_error_in_the_second_thread_is_raised_as_it_was(study_dir, monkeypatch):
    """An error of the second thread's checks is raised in the caller's thread, the error of the table checked
    first when both fail (as one after the other), and no thread is left running."""
    _two_cpus(monkeypatch)
    before = threading.active_count()

    def boom(what):
        def f(*args, **kwargs):
            raise RuntimeError(f"{what} failed")
        return f

    monkeypatch.setattr(checking, "validate_sessions", boom("sessions"))
    with pytest.raises(RuntimeError, match="sessions failed"):
        bpo.load_study(study_dir, today=TODAY)
    monkeypatch.setattr(checking, "validate_scores", boom("scores"))
    with pytest.raises(RuntimeError, match="sessions failed"):
        bpo.load_study(study_dir, today=TODAY)
    monkeypatch.undo()
    _two_cpus(monkeypatch)
    monkeypatch.setattr(checking, "link_parents", boom("links"))  # (phase 2, second thread)
    with pytest.raises(RuntimeError, match="links failed"):
        bpo.load_study(study_dir, today=TODAY)
    assert threading.active_count() == before


def test_the_second_thread_checks_under_the_callers_errstate(study_dir, monkeypatch):
    """np.errstate is a context variable: the second thread runs in the caller's context, as the checks did when
    they all ran in the caller's thread."""
    _two_cpus(monkeypatch)
    seen = {}
    real = checking.validate_patients

    def patients(*args, **kwargs):
        seen["thread"], seen["err"] = threading.current_thread() is threading.main_thread(), np.geterr()
        return real(*args, **kwargs)

    monkeypatch.setattr(checking, "validate_patients", patients)
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"), pytest.raises(
            DataValidationError):
        bpo.load_study(study_dir, today=TODAY)
    assert seen == {"thread": False, "err": {"divide": "ignore", "over": "ignore", "under": "ignore",
                                             "invalid": "ignore"}}


def test_loads_in_user_threads_and_on_one_cpu_give_the_same_results(study_dir, tmp_path, monkeypatch):
    """Four loads at once from threads of the caller (as Dask workers with several threads run them), on the same
    and on different inputs, and loads on one processor (no second thread), give the results of one load."""
    from concurrent.futures import ThreadPoolExecutor

    other = tmp_path / "other"
    other.mkdir()
    write(other / "scores.csv", "patient_id,date,instrument,score\np1,2024-01-05,nrs,6\np2,03/04/2024,nrs,7\n"
          "p2,14/04/2024,odi,30\np2,14/04/2024,odi,30\n")
    _two_cpus(monkeypatch)
    cases = [(study_dir, "raise"), (study_dir, "exclude"), (other, "exclude"), (other, "raise")]

    def plain(case):
        return _result(*case, record=False)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = [plain(c) for c in cases]
    before = threading.active_count()
    with warnings.catch_warnings(), ThreadPoolExecutor(4) as pool:
        warnings.simplefilter("ignore")
        for got, exp in zip(pool.map(plain, cases), expected):
            _assert_same(got, exp)
        for got in pool.map(plain, [cases[1]] * 4):
            _assert_same(got, expected[1])
    assert threading.active_count() == before
    monkeypatch.setattr(two_threads, "processors", lambda: 1)
    threads = set()
    real = checking.validate_patients

    def patients(*args, **kwargs):
        threads.add(threading.current_thread() is threading.main_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(checking, "validate_patients", patients)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for case, exp in zip(cases, expected):
            _assert_same(plain(case), exp)
    assert threads == {True}


def test_problem_categories_and_message_are_those_of_the_checks_one_after_the_other(tmp_path):
    """The problem table put in order table by table gave its text columns the categories in that order, not in
    the order of the checks (the scores' dates are checked before the episodes' patients are looked up):
    ``value_counts`` breaks ties by category, so the message's count by reason changed."""
    write(tmp_path / "patients.csv", "patient_id\np1\n")
    write(tmp_path / "episodes.csv", "episode_id,patient_id,onset_date\ne1,p1,2024-01-01\ne2,p9,2024-01-01\n")
    write(tmp_path / "scores.csv", "patient_id,episode_id,date,instrument,score\n"
          + "".join(f"p1,e1,2024-02-01,nrs,{20 + i}\n" for i in range(51)) + "p1,e1,2024-13-01,nrs,3\n")
    with pytest.raises(DataValidationError) as err:
        bpo.load_study(tmp_path, today=TODAY)
    assert str(err.value).splitlines()[-2].endswith("by reason: out_of_range 51, bad_date 1, unknown_patient 1")
    assert list(err.value.problems["reason"].cat.categories) == ["bad_date", "out_of_range", "unknown_patient"]
    assert list(err.value.problems["table"].cat.categories) == ["scores", "episodes"]
