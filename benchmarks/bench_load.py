"""Loading at scale: a simulated study versus a plain pandas read, and invalid rows versus valid rows.

1. Simulates a study with about 1,000,000 score rows, writes CSV and Parquet,
   and times ``load_study`` against ``pd.read_csv(engine="pyarrow")`` /
   ``pd.read_parquet`` of the same files.
2. Writes a 1,000,000-row scores file where every row is valid and one where
   every row is invalid (most of them in several columns, every junk value
   distinct) and times ``load_study`` on each (the invalid one raises
   ``DataValidationError`` listing every problem), and the command line
   ``validate`` on each (it prints the first 50 problems and a count by kind).
   Issue 11 asks for the invalid file to be checked within 2x the time of the
   valid one, in bounded memory.

Each measurement runs in a fresh process (``--one``), so that the peak RSS is
that of the one load; times are the best of ``--repeat`` runs (the study part
also prints the medians: on a shared machine the best run is the one least
disturbed, the median the typical one). With
``--steps`` the study load also reports the time of each stage (reading,
checking, linking, building the Study) from the best run: the functions that
``load_study`` calls are wrapped with timers in that process (the scores table
is checked in a second thread while the others are: the checking step adds the
time of both threads, and the steps can add up to more than the total), and the
memory each stage leaves the process holding (anonymous resident memory, of which
Arrow's allocations): new memory is touched for the first time, which the kernel
zeroes, and in a fresh process that is much of the time. The study part
then also runs the raw read and
``load_study`` alternately in one process (``--warm``), as a notebook's
second load, and prints the medians of wall and CPU time.

With ``--primed`` each measured process runs after a process that touched and
freed 1 GiB. On a virtual machine whose host takes back memory the guest has
not used for a while, a process's first touches of memory can cost several
times more after a small process than after a large one (the order of the runs
then weighs more than the code measured); primed, every measured process gets
memory the system has just used, and the runs vary much less.

Run: ``.venv/bin/python benchmarks/bench_load.py [n_rows] [--repeat 3] [--steps] [--part all|study|junk]
[--primed]``
"""

import argparse
import functools
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def scores_file(directory: Path, n: int, valid: bool) -> Path:
    """A scores table of ``n`` rows, every row valid or every row invalid (no two rows alike)."""
    rng = np.random.default_rng(1)
    i = np.arange(n)
    ids = "p" + pd.Series(i // 10).astype(str)
    if valid:
        df = pd.DataFrame({"patient_id": ids, "date": (pd.Timestamp("2022-01-01")
                                                       + pd.to_timedelta(i % 700, "D")).strftime("%Y-%m-%d"),
                           "instrument": np.where(i % 2, "nrs", "odi"), "score": rng.integers(0, 11, n)})
    else:
        df = pd.DataFrame({"patient_id": np.where(i % 7 == 0, "", ids),
                           "date": np.where(i % 3 == 0, "x" + pd.Series(i).astype(str), "2024-13-45"),
                           "instrument": np.where(i % 2 == 0, "inst" + pd.Series(i % 1000).astype(str), "nrs"),
                           "score": np.where(i % 2 == 1, "s", "99") + pd.Series(i).astype(str)})
    directory.mkdir(parents=True, exist_ok=True)
    df.to_csv(directory / "scores.csv", index=False)
    return directory


#: Stage of loading -> the functions of ``backpain_outcomes.loading`` and ``backpain_outcomes.checking`` that make
#: it (``--steps``). The building stage is ``loading.build_study`` (module ``building``); older versions of
#: loading had its parts, and the checks, in loading.
STEPS = {"reading": ("_read_all", "_read"),
         "checking": ("_first_look", "validate_patients", "validate_episodes", "validate_sessions", "validate_scores",
                      "_check_ratings", "id_codes", "set_aside_duplicates", "conflicting_ids"),
         "linking": ("link_parents", "link_rows", "leading_zero_note"),
         "building": ("build_study", "_blank_optional", "_used", "same_day_scores", "Study")}


def _time_steps() -> dict:
    """Wrap the stages' functions where loading calls them with timers; returns the dict they fill (the time of
    both threads of loading added)."""
    import importlib
    import threading

    from backpain_outcomes import loading

    modules = [loading]
    try:
        modules.append(importlib.import_module("backpain_outcomes.checking"))
    except ImportError:  # (older versions checked in loading)
        pass
    spent: dict = {}
    lock = threading.Lock()

    def timer(f, step):
        @functools.wraps(f)
        def timed(*args, **kwargs):
            t = time.perf_counter()
            try:
                return f(*args, **kwargs)
            finally:
                with lock:
                    spent[step] = spent.get(step, 0.0) + time.perf_counter() - t
        return timed

    for module in modules:
        for step, names in STEPS.items():
            for name in names:
                if name in vars(module):  # (each version of loading has some of them)
                    setattr(module, name, timer(getattr(module, name), step))
    if "build_study" in vars(loading):  # same_day_scores is imported for callers, not called by load_study
        for name in ("_blank_optional", "_used", "same_day_scores", "Study"):
            if name in vars(loading):
                setattr(loading, name, getattr(loading, name).__wrapped__)
    for name, stage in MEMORY_STAGES.items():  # (the stages of load_study, one after the other in its thread)
        if name in vars(loading):
            setattr(loading, name, _measured(getattr(loading, name), stage, spent.setdefault("_memory", {})))
    return spent


#: The functions of ``load_study`` (reading, checking and linking, building) after which ``--steps`` measures the
#: process's new memory (newer versions of loading; the memory of older ones is not measured by stage).
MEMORY_STAGES = {"_read_all": "reading", "check_tables": "checking and linking", "build_study": "building"}


def _measured(f, stage: str, grown: dict):
    """``f`` noting the process's anonymous resident memory (MiB) when it returns, by stage."""
    @functools.wraps(f)
    def measured(*args, **kwargs):
        try:
            return f(*args, **kwargs)
        finally:
            grown[stage] = (_anonymous_mib(), _arrow_mib())
    return measured


def _anonymous_mib() -> float:
    """The process's anonymous resident memory in MiB (Linux: ``RssAnon`` of /proc/self/status; NaN elsewhere):
    the memory it has touched and holds, not its files' pages."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _arrow_mib() -> float:
    import pyarrow as pa

    return pa.total_allocated_bytes() / 2**20


def one(kind: str, path: str) -> dict:
    """Run one measurement in this process; returns seconds and peak RSS (MiB)."""
    import backpain_outcomes as bpo
    from backpain_outcomes.cli import main
    from backpain_outcomes.exceptions import DataValidationError

    spent = _time_steps() if kind == "steps" else {}
    memory = spent.pop("_memory", {})
    before = (_anonymous_mib(), _arrow_mib())
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0, c0 = time.perf_counter(), time.process_time()
    out, result = {}, None  # (the result is held until the memory is measured)
    if kind in ("load", "steps"):
        try:
            result = bpo.load_study(path, today="2026-01-01")
            out["rows_used"] = len(result.scores)
        except DataValidationError as err:
            out["problems"] = len(err.problems)
    elif kind in ("cli", "cli_problems"):
        import contextlib
        import io
        extra = ["--problems", str(Path(tempfile.mkdtemp()) / "problems.csv")] if kind == "cli_problems" else []
        with contextlib.redirect_stdout(io.StringIO()) as buf, contextlib.redirect_stderr(io.StringIO()):
            out["exit"] = main(["validate", path, *extra])
        out["lines_printed"] = buf.getvalue().count("\n")
    elif kind == "pandas":
        result = _raw_reader(Path(path))()
    out["seconds"] = time.perf_counter() - t0
    out["cpu_seconds"] = time.process_time() - c0  # every thread of the process (Arrow reads with several)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    out["system_seconds"] = r1.ru_stime - r0.ru_stime  # mostly page faults: first touches of new memory
    out["page_faults"] = r1.ru_minflt - r0.ru_minflt
    out["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["new_memory_mib"], out["new_arrow_mib"] = _anonymous_mib() - before[0], _arrow_mib() - before[1]
    del result
    if memory:  # the new memory of each stage (anonymous resident, and Arrow's allocations held)
        out["memory"], last = {}, before
        for stage, now in memory.items():
            out["memory"][stage] = (now[0] - last[0], now[1] - last[1])
            last = now
    if spent:
        out["steps"] = spent  # (the checks of the scores and of the other tables run in two threads: their times add)
    return out


def _raw_reader(path: Path):
    files = sorted(Path(path).iterdir())
    if str(path).endswith("parquet"):
        return lambda: [pd.read_parquet(f) for f in files]
    return lambda: [pd.read_csv(f, engine="pyarrow") for f in files]


def warm(path: str, repeat: int) -> dict:
    """The raw read and ``load_study`` alternately in this one process, ``repeat`` times each after one run of
    each (a notebook's second load): wall and CPU time of every run."""
    import backpain_outcomes as bpo

    runs: dict = {"raw": [], "load": []}
    jobs = {"raw": _raw_reader(Path(path)), "load": lambda: bpo.load_study(path, today="2026-01-01")}
    for job in jobs.values():
        job()
    for _ in range(repeat):
        for name, job in jobs.items():
            t0, c0 = time.perf_counter(), time.process_time()
            job()
            runs[name].append((time.perf_counter() - t0, time.process_time() - c0))
    return runs


#: MiB that ``--primed`` touches and frees in a process of its own before each measured process.
PRIME_MIB = 1024


def prime() -> None:
    """Touch ``PRIME_MIB`` MiB and free them (``--primed``): the next process then gets memory pages the
    system has just used, not pages a virtual machine's host must first provide again (see the docstring)."""
    block = np.ones(PRIME_MIB * 2**20 // 8)
    del block


def measure(kind: str, path: Path, repeat: int, primed: bool = False) -> dict:
    def run() -> dict:
        if primed:
            subprocess.run([sys.executable, __file__, "--prime"], check=True)
        return json.loads(subprocess.run([sys.executable, __file__, "--one", kind, str(path)], check=True,
                                         capture_output=True, text=True).stdout)
    runs = [run() for _ in range(repeat)]
    best = min(runs, key=lambda r: r["seconds"])
    best["peak_mib"] = max(r["peak_mib"] for r in runs)
    best["median_seconds"] = float(np.median([r["seconds"] for r in runs]))
    best["median_cpu_seconds"] = float(np.median([r["cpu_seconds"] for r in runs]))
    return best


def prepare(directory: Path, n: int, part: str = "all") -> None:
    """Write the inputs (run in its own process, so that the measuring process stays small)."""
    import backpain_outcomes as bpo
    from backpain_outcomes.simulate import write_study

    if part != "study":
        scores_file(directory / "valid", n, True)
        scores_file(directory / "junk", n, False)
    _, _, frames = bpo.simulate_study(max(n // 25, 100), seed=1, return_frames=True)
    for fmt in ("csv", "parquet"):
        write_study(frames, directory / fmt, fmt=fmt)
    print(json.dumps({"scores": len(frames["scores"]), "sessions": len(frames["sessions"]),
                      "patients": len(frames["patients"])}))


def _machine() -> str:
    import os
    import platform

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs ({cpu}); Python "
            f"{platform.python_version()}, pandas {pd.__version__}; load average {load}")


def main(n: int, repeat: int, steps: bool = False, part: str = "all", primed: bool = False) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sizes = json.loads(subprocess.run([sys.executable, __file__, "--prepare", str(tmp), str(n), part], check=True,
                                          capture_output=True, text=True).stdout)
        print(_machine())
        if part in ("all", "junk"):
            _junk(tmp, n, repeat)
        if part in ("all", "study"):
            _study(tmp, sizes, repeat, steps, primed)
        print(f"(load average at the end: {', '.join(f'{x:.1f}' for x in __import__('os').getloadavg())})")


def _junk(tmp: Path, n: int, repeat: int) -> None:
    print(f"{n:,} score rows, every row valid / every row invalid (scores table only); best of {repeat}")
    labels = {"load": "load_study", "cli": "CLI validate", "cli_problems": "  --problems"}
    for kind in labels:
        a, b = measure(kind, tmp / "valid", repeat), measure(kind, tmp / "junk", repeat)
        extra = f"   {b.get('problems', '')} problems" if kind == "load" else f"   {b['lines_printed']} lines printed"
        print(f"{labels[kind]:12s} valid {a['seconds']:6.2f} s "
              f"({a['peak_mib']:5.0f} MiB peak)   invalid {b['seconds']:6.2f} s ({b['peak_mib']:5.0f} MiB peak)   "
              f"ratio {b['seconds'] / a['seconds']:4.2f}{extra}")


def _study(tmp: Path, sizes: dict, repeat: int, steps: bool, primed: bool = False) -> None:
    print(f"\nsimulated study: {sizes['scores']:,} score rows, {sizes['sessions']:,} sessions, "
          f"{sizes['patients']:,} patients; best of {repeat}; raw read = pd.read_csv(f, engine='pyarrow') / "
          "pd.read_parquet(f) of each file" + (f"; each process after one that touched and freed {PRIME_MIB} MiB "
                                               "(--primed)" if primed else ""))
    for fmt in ("csv", "parquet"):
        raw = measure("pandas", tmp / fmt, repeat, primed)
        ours = measure("steps" if steps else "load", tmp / fmt, repeat, primed)
        print(f"{fmt:8s} raw read {raw['seconds']:6.2f} s ({raw['peak_mib']:5.0f} MiB peak)   load_study "
              f"{ours['seconds']:6.2f} s ({ours['peak_mib']:5.0f} MiB peak)   ratio "
              f"{ours['seconds'] / raw['seconds']:5.1f}x   (CPU time of the best runs: {raw['cpu_seconds']:.2f} s and "
              f"{ours['cpu_seconds']:.2f} s, ratio {ours['cpu_seconds'] / raw['cpu_seconds']:.1f}x; of which system "
              f"time {raw['system_seconds']:.2f} s and {ours['system_seconds']:.2f} s for {raw['page_faults']:,} and "
              f"{ours['page_faults']:,} page faults)")
        print(f"         medians of the {repeat} runs: raw read {raw['median_seconds']:.2f} s, load_study "
              f"{ours['median_seconds']:.2f} s, ratio {ours['median_seconds'] / raw['median_seconds']:.1f}x; CPU time "
              f"{raw['median_cpu_seconds']:.2f} s and {ours['median_cpu_seconds']:.2f} s, ratio "
              f"{ours['median_cpu_seconds'] / raw['median_cpu_seconds']:.1f}x")
        if steps:
            print("         steps of load_study: " + ", ".join(f"{k} {v:.2f} s" for k, v in ours["steps"].items()))
            if "memory" in ours:
                print(f"         new memory held with the result (anonymous resident, of which Arrow's allocations): raw read "
                      f"{raw['new_memory_mib']:.0f} MiB ({raw['new_arrow_mib']:.0f}); load_study "
                      f"{ours['new_memory_mib']:.0f} MiB ({ours['new_arrow_mib']:.0f}): " + ", ".join(
                          f"{k} {a:+.0f} ({b:+.0f})" for k, (a, b) in ours["memory"].items()))
        w = json.loads(subprocess.run([sys.executable, __file__, "--warm", str(tmp / fmt), str(max(repeat, 5))],
                                      check=True, capture_output=True, text=True).stdout)
        (rw, rc), (lw, lc) = (np.median(w["raw"], axis=0), np.median(w["load"], axis=0))
        print(f"         in one process, alternately, {len(w['load'])} runs each after a first: medians raw read "
              f"{rw:.2f} s, load_study {lw:.2f} s, ratio {lw / rw:.1f}x; CPU time {rc:.2f} s and {lc:.2f} s, ratio "
              f"{lc / rc:.1f}x")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        print(json.dumps(one(sys.argv[2], sys.argv[3])))
    elif len(sys.argv) > 1 and sys.argv[1] == "--warm":
        print(json.dumps(warm(sys.argv[2], int(sys.argv[3]))))
    elif len(sys.argv) > 1 and sys.argv[1] == "--prime":
        prime()
    elif len(sys.argv) > 1 and sys.argv[1] == "--prepare":
        prepare(Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else "all")
    else:
        ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        ap.add_argument("n", nargs="?", type=int, default=1_000_000)
        ap.add_argument("--repeat", type=int, default=3)
        ap.add_argument("--steps", action="store_true", help="time each stage of the study load")
        ap.add_argument("--part", choices=("all", "study", "junk"), default="all")
        ap.add_argument("--primed", action="store_true",
                        help=f"run each measured process after one that touched and freed {PRIME_MIB} MiB")
        args = ap.parse_args()
        main(args.n, args.repeat, args.steps, args.part, args.primed)
