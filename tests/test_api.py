"""backend/api.py: the README's "Python API" examples run as written (the code blocks are read
from README.md, so the test and the documentation cannot drift apart), plus the API's own edges."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from tests.conftest import ROOT


def readme_api_blocks() -> list[str]:
    """The ```python blocks of the README's "## Python API" section, in order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("## Python API")
    end = text.find("\n## ", start + 5)
    return re.findall(r"```python\n(.*?)```", text[start:end if end > 0 else None], re.S)


def test_readme_has_both_examples():
    blocks = readme_api_blocks()
    assert len(blocks) == 2
    assert "api.load_codes" in blocks[0] and "api.load(" in blocks[1]


def test_readme_own_codes_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(readme_api_blocks()[0], "README.md (Python API, block 1)", "exec"), scope)
    assert scope["feats"].shape == (500, 64)
    assert scope["m"].measured_invariant
    out = pd.read_csv(tmp_path / "my_maps.csv")
    assert len(out) == 500 and {"row", "code_id", "raw_pc1", "inv_pc2", "digit", "energy"} <= set(out.columns)


def test_readme_shipped_model_example_runs(tiny_rot_registry, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from backend import api

    scope: dict = {"api": api}
    exec(compile(readme_api_blocks()[1], "README.md (Python API, block 2)", "exec"), scope)
    assert len(scope["enc"].table) == 300
    assert scope["m"].raw.coords.shape == (300, 2)
    assert "rot_mnist_c8" in api.models()


def test_codes_from_array_checks_like_a_file():
    from backend import api

    rng = np.random.default_rng(0)
    z = rng.normal(size=(40, 5, 1))
    data = api.codes_from_array(z, "S_5", labels={"kind": np.array(["a", "b"] * 20, dtype=object)},
                                mask=np.ones((40, 5), bool))
    assert data.codes.mask is not None and data.label_columns == ("kind",)
    assert list(api.projections(data)["key"])[:1] == ["sort"]
    np.testing.assert_allclose(api.project(data.codes, "sort"), np.sort(z[:, :, 0], axis=1), rtol=1e-6)
    with pytest.raises(api.CodesFileError, match="NaN"):
        api.codes_from_array(np.full((4, 3), np.nan), "none")
    with pytest.raises(TypeError, match="expected UploadedCodes or EncodedDataset"):
        api.maps(z, "sort")
