"""Shipped datasets: Anderson (1984) loads through the loader as global ratings of change, every row accounted
for; a damaged copy is refused with the lines to blame (counted by hand: header = line 1)."""

import pandas as pd
import pytest

from backpain_outcomes.datasets import ANDERSON_DATE, ANDERSON_SCALE, anderson1984_path, load_anderson1984
from backpain_outcomes.exceptions import DataValidationError


def test_anderson_loads_as_grc_ratings():
    study = load_anderson1984()
    raw = pd.read_csv(anderson1984_path())
    assert len(study.episodes) == len(study.patients) == len(raw) == 101
    assert set(study.scores["instrument"]) == {"grc"} and (study.scores["date"] == ANDERSON_DATE).all()
    # complete relief (pain_code 6) is rating 1 and worse (pain_code 1) rating 6: counts from the data README
    assert (study.scores["score"] == 1).sum() == 16 and (study.scores["score"] <= 2).sum() == 44
    assert study.patients[["x1", "x2", "x3"]].dtypes.map(pd.api.types.is_numeric_dtype).all()
    assert (study.episodes["treatment_status"] == "unknown").all()
    assert "a placeholder" in study.notes[0] and study.input_files == [anderson1984_path().resolve()]
    assert study.scores["_row"].min() == 2 and study.scores["_row"].max() == 102
    assert ANDERSON_SCALE[0] == "complete relief" and ANDERSON_SCALE[-1] == "worse"


def test_a_damaged_copy_is_refused_by_line(tmp_path):
    lines = anderson1984_path().read_text().splitlines()
    lines[4] = lines[4].replace('"same",2', '"same",5')                         # line 5: text and code disagree
    lines[6] = lines[6].rsplit(",", 2)[0] + ',"better",4'                        # line 7: not a category
    (tmp_path / "copy.csv").write_text("\n".join(lines) + "\n")
    assert '"same",5' in lines[4]
    with pytest.raises(DataValidationError) as info:
        load_anderson1984(tmp_path / "copy.csv")
    p = info.value.problems
    assert p[["source", "row", "column", "reason"]].values.tolist() == [
        ["copy.csv", 5, "pain", "inconsistent"], ["copy.csv", 7, "pain", "unknown_category"]]
    (tmp_path / "cols.csv").write_text("id,x1,pain\n1,1,same\n")
    with pytest.raises(DataValidationError, match="missing column.s. x2, x3, pain_code"):
        load_anderson1984(tmp_path / "cols.csv")
