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
def sim():
    return bpo.simulate_study(n_patients=400, seed=7)


def write(path, text, encoding="utf-8", newline="\n"):
    path.write_bytes(text.replace("\n", newline).encode(encoding))
    return path
