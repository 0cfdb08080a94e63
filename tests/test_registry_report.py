"""The clinic report of a partitioned study against the report of the same data in memory.

The expected values are the package's own in-memory report of the same rows (content tables, machine tables,
sentences, claims, numbers, notes, the disclosure ledger, the figures' PNG bytes, and the HTML with the provenance
record taken out): equal, not close. Partitioned studies are a registry on a 2-worker Dask cluster
(``LocalCluster(processes=False)``, as tests/test_registry.py) and in-memory partitions run one after the other
(``SequentialPartitions``).
"""

import re
import warnings
from pathlib import Path

import pandas as pd
import pytest

import backpain_outcomes as bpo
from backpain_outcomes.cli import main
from backpain_outcomes.exceptions import DisclosureError
from backpain_outcomes.provenance import read_provenance
from backpain_outcomes.registry import load_partitioned, write_partitioned
from backpain_outcomes.registry_partitions import SequentialPartitions
from backpain_outcomes.registry_report import SelectedPartitions
from backpain_outcomes.report import render_html
from backpain_outcomes.report_config import check_period
from backpain_outcomes.report_content import report_content
from backpain_outcomes.simulate import simulate_study, write_study

pytest.importorskip("distributed")

TODAY = "2030-01-01"


@pytest.fixture(scope="module")
def example_both(tmp_path_factory, client):
    """The shipped example study in memory and as a registry of 4 partitions (100 patients each)."""
    reg = write_partitioned(bpo.example_path(), tmp_path_factory.mktemp("example") / "reg", patients_per_partition=100)
    part = load_partitioned(reg, client=client)
    yield bpo.load_study(bpo.example_path()), part
    part.close()


@pytest.fixture(scope="module")
def simulated_both(tmp_path_factory, client):
    """A simulated study of 4 clinics (150 patients) written as CSV, in memory and as a registry of 5 partitions."""
    _, _, frames = simulate_study(150, seed=8, n_clinics=4, return_frames=True)
    root = tmp_path_factory.mktemp("sim")
    src = write_study(frames, root / "csv")
    part = load_partitioned(write_partitioned(src, root / "reg", patients_per_partition=30), client=client,
                            today=TODAY)
    yield bpo.load_study(src, today=TODAY), part
    part.close()


def content_of(study, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # both raise the same warnings; the report's notes are compared
        return report_content(study, progress=False, **kwargs)


def assert_same_report(a, b):
    """Every part of two ReportContent objects equal, and their HTML."""
    assert a.tables.keys() == b.tables.keys()
    for name in a.tables:
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name])
        if "machine" in a.tables[name].attrs:
            pd.testing.assert_frame_equal(a.tables[name].attrs["machine"], b.tables[name].attrs["machine"])
    pd.testing.assert_frame_equal(a.benchmark.table, b.benchmark.table)
    pd.testing.assert_frame_equal(a.therapists.table, b.therapists.table)
    assert (a.text, a.claims, a.glossary, a.flow, a.notes) == (b.text, b.claims, b.glossary, b.flow, b.notes)
    assert repr(a.numbers) == repr(b.numbers)
    assert a.ledger.status == b.ledger.status
    assert {k: a.ledger.value(k) for k in a.ledger.cells} == {k: b.ledger.value(k) for k in b.ledger.cells}
    assert {k: f["data"] for k, f in a.figures.items()} == {k: f["data"] for k, f in b.figures.items()}
    assert (a.title, a.clinic_text, a.period_text) == (b.title, b.clinic_text, b.period_text)
    assert render_html(a) == render_html(b)


def without_provenance(path):
    """The written HTML with its provenance record (date, time, configuration, inputs) taken out."""
    html, n = re.subn(r'<meta name="[^"]+" content="[^"]*">\n<script type="application/json" id="[^"]+">.*?'
                      r"</script>\n", "", path.read_text(encoding="utf-8"), flags=re.S)
    assert n == 1
    return html


@pytest.mark.parametrize("kwargs", [{}, {"clinic": "C1", "period": ("2021-06-01", None)}])
def test_example_report_on_a_dask_cluster_equals_in_memory(example_both, kwargs):
    mem, part = example_both
    assert_same_report(content_of(mem, **kwargs), content_of(part, **kwargs))


def test_clinic_report_of_a_registry_writes_the_same_html(example_both, tmp_path):
    mem, part = example_both
    a = bpo.clinic_report(mem, tmp_path / "mem.html", clinic="C2", show_therapists=True, progress=False)
    b = bpo.clinic_report(study=part, path=tmp_path / "part.html", clinic="C2", show_therapists=True, progress=False)
    assert without_provenance(a) == without_provenance(b)
    record = read_provenance(b)  # sound: read_provenance checks the hash of the document
    assert record.config["clinic"] == "C2" and record.function == "clinic_report"
    files = sorted(p for p in part.directory.rglob("*") if p.is_file())
    assert sorted(Path(i["path"]).name for i in record.inputs) == sorted(p.name for p in files)  # manifest, partitions
    assert any(i["path"].endswith("registry.json") for i in record.inputs) and len(files) > 5


def test_the_report_command_reads_a_registry(example_both, tmp_path, capsys):
    """``backpain-outcomes report REGISTRY`` (a local cluster of its own) writes the report of the example's files."""
    _, part = example_both
    assert main(["report", str(bpo.example_path()), "-o", str(tmp_path / "mem.html"), "--clinic", "C1"]) == 0
    assert main(["report", str(part.directory), "-o", str(tmp_path / "reg.html"), "--clinic", "C1"]) == 0
    assert without_provenance(tmp_path / "mem.html") == without_provenance(tmp_path / "reg.html")
    assert main(["claims", str(part.directory)]) == 2  # a command that does not read registries says so
    assert "is a partitioned registry (registry.json); the claims command reads a study directory" in \
        capsys.readouterr().err


@pytest.mark.parametrize("kwargs", [
    {"clinic": "C3"},  # 37 episodes: small cells suppressed
    {"clinic": "C4", "min_n": 8, "show_therapists": True, "period": (None, "2023-06-30")},
    {"instrument": "odi", "day": 84, "origin": "first_contact", "rule": "nrs<=2"},
])
def test_simulated_report_on_a_dask_cluster_equals_in_memory(simulated_both, kwargs):
    mem, part = simulated_both
    a, b = content_of(mem, **kwargs), content_of(part, **kwargs)
    assert_same_report(a, b)
    if kwargs.get("clinic") == "C3":
        assert any(st != "published" for st in b.ledger.status.values())  # the case does suppress counts


@pytest.mark.parametrize("kwargs", [
    {"clinic": "C9"}, {"period": ("2030-01-01", None)}, {"period": ("2022-01-01", "2021-01-01")},
    {"instrument": "xyz"}, {"min_n": 0}, {"origin": "x"}, {"show_therapists": "yes"}, {"title": 3},
    {"rule": "nrs<<1"}, {"clinic": "C1", "min_n": 200}, {"instrument": "rmdq"},
])
def test_bad_arguments_give_the_same_error(simulated_both, kwargs):
    mem, part = simulated_both
    with pytest.raises((TypeError, ValueError)) as want:
        content_of(mem, **kwargs)
    with pytest.raises(type(want.value)) as got:
        content_of(part, **kwargs)
    assert str(got.value) == str(want.value)
    if kwargs.get("min_n") == 200:
        assert isinstance(got.value, DisclosureError)


def tiny_modalities(seed):
    """A simulated study in which four modalities keep only 1-4 episodes each (as tests/test_report.py)."""
    study, _ = simulate_study(260, seed=seed, n_clinics=1)
    keep = []
    small = {"cupping": 1, "swedish": 2, "dry_needling": 3, "trigger_point": 4}
    for mod, g in study.episodes.groupby("modality"):
        keep += g["episode_id"].tolist()[:small.get(mod, len(g))]
    return study.subset(keep)


@pytest.mark.parametrize("kwargs", [{}, {"min_n": 3, "period": ("2021-04-01", "2022-06-30")}])
def test_sequential_partitions_with_tiny_groups_equal_in_memory(kwargs):
    study = tiny_modalities(5)
    assert_same_report(content_of(study, **kwargs), content_of(SequentialPartitions.split(study, 3), **kwargs))


def test_selected_partitions_hold_the_selected_episodes_only():
    study, _ = simulate_study(90, seed=4, n_clinics=3)
    parts = SequentialPartitions.split(study, 3)
    period = check_period(("2021-03-01", None))
    sel = SelectedPartitions(parts, "C2", period)
    ep = study.episodes
    want = ep.loc[(ep["clinic_id"] == "C2") & (ep["first_visit_date"] >= "2021-03-01"), "episode_id"]
    got = pd.concat(sel.map(lambda s: s.episodes["episode_id"]), ignore_index=True)
    assert got.tolist() == want.tolist() and len(want) > 0
    assert sel.n_partitions == len(sel.map(len_of)) <= 3
    pd.testing.assert_frame_equal(sel.flow(), study.flow())  # the read counts of the study as loaded
    with pytest.raises(ValueError, match="no episode"):
        SelectedPartitions(parts, "C9", None)


def len_of(study):
    return len(study.episodes)


def test_unknown_onsets_are_refused_alike():
    """Four episodes of clinic C1 without an onset date: from onset the report is refused with the same error
    (counting those episodes), also for clinic C2, whose benchmark uses every clinic; from first contact the
    reports are the same."""
    _, _, frames = simulate_study(120, seed=6, n_clinics=2, return_frames=True)
    c1 = frames["patients"].loc[frames["patients"]["clinic_id"] == "C1", "patient_id"]
    blank = frames["episodes"].index[frames["episodes"]["patient_id"].isin(c1)][:4]
    frames["episodes"].loc[blank, "onset_date"] = None
    study = bpo.load_study(**frames)
    parts = SequentialPartitions.split(study, 3)
    for kwargs in ({}, {"clinic": "C2"}):
        with pytest.raises(ValueError, match=r"needs the onset date of every episode, but 4 episode\(s\) have none"
                           ) as want:
            content_of(study, **kwargs)
        with pytest.raises(ValueError) as got:
            content_of(parts, **kwargs)
        assert str(got.value) == str(want.value)
    assert_same_report(content_of(study, origin="first_contact"), content_of(parts, origin="first_contact"))
