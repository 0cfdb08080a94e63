import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import backpain_outcomes as bpo  # noqa: E402

TODAY = pd.Timestamp("2026-11-26")


@pytest.fixture(scope="session")
def example_study():
    return bpo.load_study(bpo.example_path())


@pytest.fixture(scope="session")
def client():
    """One 2-worker Dask cluster for the registry tests (threads: they start at once; worker processes, as
    load_partitioned starts by default, pickling included, are exercised by tests/test_registry_models.py and
    benchmarks/bench_registry.py and give the same results)."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0")
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


@pytest.fixture(scope="session")
def sim():
    return bpo.simulate_study(n_patients=400, seed=7)


def write(path, text, encoding="utf-8", newline="\n"):
    path.write_bytes(text.replace("\n", newline).encode(encoding))
    return path


def tiny_study(measurements, modality=None, onset_days_before=10, instrument="nrs"):
    """A small Study built in memory (models tests).

    ``measurements``: {episode_id: [(day since first contact, score), ...]};
    ``modality``: {episode_id: modality code} (default cupping; "untreated" goes
    through the episode's arm). Each episode belongs to its own patient; onset
    lies ``onset_days_before`` days before the first contact.
    """
    from backpain_outcomes.study import Study
    d0 = pd.Timestamp("2024-03-01")
    modality = modality or {}
    sc, ep, ss = [], [], []
    for i, (eid, rows) in enumerate(measurements.items()):
        pid = f"p{i}"
        for day, score in rows:
            sc.append({"episode_id": eid, "patient_id": pid, "date": d0 + pd.Timedelta(days=day),
                       "instrument": instrument, "score": float(score)})
        mod = modality.get(eid, "cupping")
        ep.append({"episode_id": eid, "patient_id": pid, "onset_date": d0 - pd.Timedelta(days=onset_days_before),
                   "arm": "untreated" if mod == "untreated" else None})
        if mod != "untreated":
            ss.append({"patient_id": pid, "episode_id": eid, "modality": mod, "therapist_id": "t1",
                       "session_date": d0, "duration_min": 30.0})
    sessions = pd.DataFrame(ss, columns=["patient_id", "episode_id", "modality", "therapist_id", "session_date",
                                         "duration_min"])
    return Study(pd.DataFrame(sc), episodes=pd.DataFrame(ep), sessions=sessions)
