"""Fingerprint of ``load_study``: save what it gives on a set of inputs, or compare with a saved fingerprint.

Used to keep the behaviour of loading identical while it is made faster (issue 17): the Study tables
(patients, episodes, scores, sessions, dtypes included), exclusions, blanked values, same-day table,
notes, flow, summary and warnings, or the problems raised, on

- the simulated 1M-row study (``simulate_study(40000, seed=1)``) as CSV and as Parquet;
- 20,000 junk rows (``bench_load.scores_file(valid=False)``);
- a copy of a 4,000-patient study with about 1% of the cells corrupted, duplicate rows and blank lines;
- small files of instrument/modality aliases, unknown and missing names and duplicates; episodes
  assigned from onsets, unknown episodes and episodes of another patient; dates with times, Excel
  serials and mixed day/month orders;
- the corrupted study as Parquet (junk, blanks, spaces; a categorical column; row groups) and the
  example study of ``data/example`` as CSV and as Parquet;

each with ``errors="raise"`` and ``errors="exclude"``.

Run: ``.venv/bin/python benchmarks/check_load_equal.py save|compare DIR [--small]`` (inputs are written
under ``DIR/inputs`` once and reused; ``--small`` skips the 1M-row study).
"""

import argparse
import pickle
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_load  # noqa: E402

import backpain_outcomes as bpo  # noqa: E402
from backpain_outcomes.exceptions import DataValidationError  # noqa: E402
from backpain_outcomes.simulate import write_study  # noqa: E402


def _corrupt(frames: dict, rng) -> dict:
    """About 1% of the cells replaced with junk, some rows repeated, blank lines added (as text)."""
    junk = np.array(["", "x", "-3", "9999", "2024-13-45", "N/A", " nrs ", "ODI", "p1", "12/31/2023", "3.5",
                     "45 min", "TRUE", "0", "01/02/2024", "45000"], dtype=object)
    out = {}
    for name, df in frames.items():
        df = df.astype(str).astype(object)
        mask = rng.random(df.shape) < 0.01
        vals = junk[rng.integers(0, len(junk), df.shape)]
        df = df.mask(mask, pd.DataFrame(vals, index=df.index, columns=df.columns))
        dup = df.sample(frac=0.01, random_state=1)
        df = pd.concat([df, dup]).sort_index(kind="stable").reset_index(drop=True)
        out[name] = df
    return out


def _write_corrupt(frames: dict, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, df in frames.items():
        text = df.to_csv(index=False, lineterminator="\n").split("\n")
        text = [line for i, line in enumerate(text) for line in ([line, ""] if i % 97 == 50 else [line])]
        (directory / f"{name}.csv").write_text("\n".join(text))


def _small(directory: Path) -> None:
    """Small hand-made studies (aliases, onsets, dates)."""
    a = directory / "aliases"
    a.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"patient_id": ["p1", "p2", "p3", "p4"], "age": ["40", "N/A", "150", "33"],
                  "sex": ["F", "male", "x", ""]}).to_csv(a / "patients.csv", index=False)
    pd.DataFrame({"patient_id": ["p1", "p1", "p2", "p3", "p4", "p4"],
                  "session_date": ["2024-01-02", "2024-01-05", "2024-02-01", "2024-03-01", "2024-03-02", ""],
                  "modality": ["Chiropractic", "massage", "Hot stones", "", "acupuncture", "physio"]}
                 ).to_csv(a / "sessions.csv", index=False)
    pd.DataFrame({"patient_id": ["p1", "p1", "p1", "p2", "p2", "p3", "p3", "p4", "p9", "p1"],
                  "date": ["2024-01-02", "2024-01-02", "2024-01-02", "2024-02-01", "2024-02-08", "2024-03-01",
                           "2024-03-01", "2024-03-02", "2024-03-02", "2024-01-09"],
                  "instrument": ["NRS", "Oswestry", "NRS", "vas", "bogus", "", "grc", "RMDQ", "nrs", "nrs"],
                  "score": ["6", "40", "6", "55", "3", "2", "9", "12", "5", "4"]}).to_csv(a / "scores.csv", index=False)
    o = directory / "onsets"
    o.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"episode_id": ["e1", "e2", "e3", "e4"], "patient_id": ["p1", "p1", "p2", "p3"],
                  "onset_date": ["2024-01-01", "2024-06-01", "2024-02-01", "bad"], "arm": ["", "none", "", ""]}
                 ).to_csv(o / "episodes.csv", index=False)
    pd.DataFrame({"patient_id": ["p1", "p1", "p2", "p2", "p3", "p1"], "episode_id": ["", "", "e3", "e1", "", "e9"],
                  "session_date": ["2024-01-05", "2024-06-05", "2024-02-02", "2024-02-03", "2024-03-01",
                                   "2024-01-07"], "modality": ["chiro", "massage", "acupuncture", "physio", "chiro",
                                                               "chiro"]}).to_csv(o / "sessions.csv", index=False)
    pd.DataFrame({"patient_id": ["p1", "p1", "p1", "p2", "p2", "p3", "p1", "p4"],
                  "episode_id": ["", "", "e2", "e1", "e3", "", "e9", ""],
                  "date": ["2024-01-03", "2024-06-03", "2024-06-10", "2024-02-03", "2024-02-03", "2024-03-01",
                           "2024-01-08", "2024-01-08"], "instrument": ["nrs"] * 8,
                  "score": ["6", "5", "3", "7", "8", "4", "2", "1"]}).to_csv(o / "scores.csv", index=False)
    d = directory / "dates"
    d.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"patient_id": ["p1"] * 8 + ["p2"] * 4,
                  "date": ["2024-01-02 10:30", "14/07/2024", "03/04/2024", "45300", "45301.5", "2024-01-05T08:00:00",
                           "05/06/2024", "2024-02-02", "31/01/2024", "01/02/2024", "2024-03-03 00:00:00", "12/12/2024"],
                  "instrument": ["nrs"] * 12, "score": [str(i % 11) for i in range(12)]}
                 ).to_csv(d / "scores.csv", index=False)
    d2 = directory / "dates_mdy"
    d2.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"patient_id": ["p1"] * 4, "date": ["03/04/2024", "12/31/2024", "01/02/2024", "45300"],
                  "instrument": ["nrs"] * 4, "score": ["1", "2", "3", "4"]}).to_csv(d2 / "scores.csv", index=False)
    d3 = directory / "dates_ambiguous"
    d3.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"patient_id": ["p1"] * 3, "date": ["03/04/2024", "01/02/2024", "2024-01-01 23:59"],
                  "instrument": ["nrs"] * 3, "score": ["1", "2", "3"]}).to_csv(d3 / "scores.csv", index=False)


def _parquet_variants(inputs: Path) -> None:
    """The corrupted study as Parquet (text columns with junk, marks, blanks and spaces; patients with a
    categorical column, scores in row groups of 5,000 rows) and the example study of ``data/``."""
    frames = {f.stem: pd.read_csv(f, dtype=str, keep_default_na=False, skip_blank_lines=False)
              for f in sorted((inputs / "corrupt").glob("*.csv"))}
    out = inputs / "corrupt_parquet"
    out.mkdir(parents=True, exist_ok=True)
    for name, df in frames.items():
        df = df.replace({"": None})
        for col in df.columns.difference(["instrument", "score"]):  # the junk's spaces in two columns only
            df[col] = df[col].replace({" nrs ": "nrs"})
        if "score" in df:  # spaces around some values of two columns (stripped); the other columns keep their codes
            df["score"] = df["score"].replace({"x": " x "})
            df["patient_id"] = df["patient_id"].replace({"p1": "p1 "})
        if name == "patients":
            df["sex"] = df["sex"].astype("category")
        df.to_parquet(out / f"{name}.parquet", row_group_size=5000 if name == "scores" else None)
    example = inputs / "example"
    example.mkdir(parents=True, exist_ok=True)
    for f in sorted((Path(__file__).resolve().parents[1] / "data" / "example").glob("*.csv")):
        (example / f.name).write_bytes(f.read_bytes())
    example_pq = inputs / "example_parquet"
    example_pq.mkdir(parents=True, exist_ok=True)
    for f in sorted(example.glob("*.csv")):
        pd.read_csv(f).to_parquet(example_pq / f"{f.stem}.parquet")


def prepare(inputs: Path, big: bool) -> None:
    if big and not (inputs / "parquet").exists():
        _, _, frames = bpo.simulate_study(40000, seed=1, return_frames=True)
        write_study(frames, inputs / "csv", fmt="csv")
        write_study(frames, inputs / "parquet", fmt="parquet")
    if not (inputs / "junk").exists():
        bench_load.scores_file(inputs / "junk", 20000, False)
        _, _, frames = bpo.simulate_study(4000, seed=2, return_frames=True)
        _write_corrupt(_corrupt(frames, np.random.default_rng(3)), inputs / "corrupt")
        write_study(frames, inputs / "mid_parquet", fmt="parquet")
        _small(inputs)
    if not (inputs / "example_parquet").exists():
        _parquet_variants(inputs)


def fingerprint(path: Path, errors: str) -> dict:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            s = bpo.load_study(path, errors=errors, today="2026-01-01")
        except DataValidationError as err:
            return {"raised": str(err)[:2000], "problems": err.problems,
                    "warnings": [str(w.message) for w in caught]}
    out = {k: getattr(s, k) for k in ("patients", "episodes", "scores", "sessions", "exclusions", "blanked_values",
                                      "same_day_scores", "notes", "rows_read", "sources", "n_untreated_records")}
    out["flow"] = s.flow()
    out["summary"] = s.summary()
    out["warnings"] = [str(w.message) for w in caught]
    return out


def cases(inputs: Path, big: bool) -> list:
    names = (["csv", "parquet"] if big else []) + ["junk", "corrupt", "mid_parquet", "aliases", "onsets", "dates",
                                                   "dates_mdy", "dates_ambiguous", "corrupt_parquet", "example",
                                                   "example_parquet"]
    return [(n, e) for n in names for e in ("raise", "exclude")]


#: ``--any-category-order``: categorical columns compared by their values (for a change that only reorders the
#: categories of the problem table, as the checks of tables in two threads did).
ANY_CATEGORY_ORDER = False


def _equal(a, b, where: str) -> list:
    if isinstance(a, pd.DataFrame):
        if not isinstance(b, pd.DataFrame):
            return [f"{where}: type {type(b)}"]
        if list(a.columns) != list(b.columns) or list(map(str, a.dtypes)) != list(map(str, b.dtypes)):
            return [f"{where}: columns/dtypes {list(zip(a.columns, a.dtypes))} != {list(zip(b.columns, b.dtypes))}"]
        try:
            pd.testing.assert_frame_equal(a, b, check_exact=True, check_categorical=not ANY_CATEGORY_ORDER)
        except AssertionError as err:
            return [f"{where}: {str(err)[:500]}"]
        return []
    if isinstance(a, dict):
        if set(a) != set(b):
            return [f"{where}: keys {sorted(a)} != {sorted(b)}"]
        return [m for k in a for m in _equal(a[k], b[k], f"{where}.{k}")]
    return [] if a == b else [f"{where}: {str(a)[:300]!r} != {str(b)[:300]!r}"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("save", "compare"))
    ap.add_argument("directory", type=Path)
    ap.add_argument("--small", action="store_true", help="skip the 1M-row study")
    ap.add_argument("--only", nargs="+", help="these inputs only (names of DIR/inputs)")
    ap.add_argument("--any-category-order", action="store_true",
                    help="compare categorical columns by their values, in any order of categories")
    args = ap.parse_args()
    global ANY_CATEGORY_ORDER
    ANY_CATEGORY_ORDER = args.any_category_order
    inputs = args.directory / "inputs"
    prepare(inputs, not args.small)
    bad = 0
    for name, errors in cases(inputs, not args.small):
        if args.only and name not in args.only:
            continue
        got = fingerprint(inputs / name, errors)
        saved = args.directory / f"{name}_{errors}.pkl"
        if args.mode == "save":
            saved.write_bytes(pickle.dumps(got))
            print(f"saved {name} {errors}: " + ("raised" if "raised" in got else f"{len(got['scores'])} scores"))
            continue
        diff = _equal(pickle.loads(saved.read_bytes()), got, f"{name}/{errors}")
        bad += bool(diff)
        print(f"{name} {errors}: " + ("EQUAL" if not diff else "DIFFERENT\n  " + "\n  ".join(diff[:10])))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
