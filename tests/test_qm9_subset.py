"""``$ELX_QM9_SUBSET=N``: only the N chosen molecules are featurized (the same seeded rows the
registry always picked), in a cache file of their own; the result equals featurizing all of
QM9 and taking the subset (checked on the full data set in the slow run)."""

import numpy as np
import pandas as pd
import pytest

from backend.data import qm9

N_TOTAL = 130_831


def _old_registry_rows(n_total, size):
    """The rows ``QM9GraphVAEEntry.dataset()`` took out of all of QM9 before subsets were
    featurized alone (kept literally, to show the choice did not change)."""
    return np.sort(np.random.default_rng(0).choice(n_total, size, replace=False))


@pytest.fixture()
def featurized(monkeypatch, tmp_path):
    """An empty cache folder, and the number of rows of every ``featurize_table`` call."""
    monkeypatch.setenv("ELX_CACHE_DIR", str(tmp_path))
    calls = []
    real = qm9.featurize_table

    def counting(table, *args, **kwargs):
        calls.append(len(table))
        return real(table, *args, **kwargs)

    monkeypatch.setattr(qm9, "featurize_table", counting)
    return calls


def _assert_same(a, b):
    pd.testing.assert_frame_equal(a.table, b.table)
    for name in ("types", "bonds", "tiebreak"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


def test_subset_featurizes_only_the_chosen_molecules(featurized, tmp_path):
    g = qm9.load_qm9_graphs(progress=False, subset=50)
    assert featurized == [50]
    table = qm9.load_qm9_table()
    assert len(table) == N_TOTAL
    rows = _old_registry_rows(N_TOTAL, 50)
    assert np.array_equal(qm9.subset_rows(N_TOTAL, 50), rows)
    assert np.array_equal(g.table["qm9_index"], table["qm9_index"].to_numpy()[rows])
    assert np.array_equal(g.table["smiles"], table["smiles"].to_numpy()[rows])
    assert np.array_equal(g.table["split"], qm9.split_labels(N_TOTAL, 0)[rows])  # split of all of QM9
    assert g.types.shape == (50, 9) and g.bonds.shape == (50, 9, 9) and g.table["representable"].all()
    for r in range(50):
        want = qm9.smiles_to_graph(g.table["smiles"].iat[r])
        assert np.array_equal(g.types[r], want.types) and np.array_equal(g.bonds[r], want.bonds)
        assert np.array_equal(g.tiebreak[r], want.tiebreak)
        assert g.table["n_atoms"].iat[r] == (want.types > 0).sum()
    assert g.row_of(int(g.table["qm9_index"].iat[7])) == 7
    # a cache file of its own (the full data set's file is not written), read back on the next call
    files = [p.name for p in tmp_path.glob("qm9_graphs_*.npz")]
    assert len(files) == 1 and files[0].endswith("_subset50.npz"), files
    _assert_same(qm9.load_qm9_graphs(progress=False, subset=50), g)
    assert featurized == [50]
    # another size and another split seed: a new choice, the same rows' split labels of that seed
    g2 = qm9.load_qm9_graphs(split_seed=3, progress=False, subset=20)
    assert featurized == [50, 20]
    assert np.array_equal(g2.table["split"], qm9.split_labels(N_TOTAL, 3)[_old_registry_rows(N_TOTAL, 20)])


def test_env_variable_reaches_the_registry_and_every_loader(featurized, monkeypatch):
    from backend import registry

    monkeypatch.setenv("ELX_QM9_SUBSET", "40")
    monkeypatch.delenv("ELX_WEIGHTS_DIR", raising=False)  # the shipped sidecar (its split seed)
    entry = registry.get("graph_vae_qm9")
    entry.reset()
    try:
        graphs = entry.dataset()
        assert "40 molecules" in entry.data_loading_message()
    finally:
        entry.reset()
    assert featurized == [40] and len(graphs.table) == 40
    assert np.array_equal(graphs.table["qm9_index"],
                          qm9.load_qm9_table()["qm9_index"].to_numpy()[_old_registry_rows(N_TOTAL, 40)])
    # a loader that does not say how much (the training command's) gets the same subset, cached
    _assert_same(qm9.load_qm9_graphs(progress=False), graphs)
    assert featurized == [40]


def test_zero_or_too_large_subset_means_all_of_qm9(monkeypatch, tmp_path):
    """Routing only: featurization is stubbed, so this does not parse 130,831 SMILES."""
    monkeypatch.setenv("ELX_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("ELX_QM9_SUBSET", raising=False)
    calls = []

    def stub(table, progress=False):
        m = len(table)
        calls.append(m)
        return (np.zeros((m, 9), np.int8), np.zeros((m, 9, 9), np.int8), np.zeros((m, 9), np.int8),
                np.zeros(m, np.int16), np.full(m, "C"), {})

    monkeypatch.setattr(qm9, "featurize_table", stub)
    assert len(qm9.load_qm9_graphs(progress=False).table) == N_TOTAL
    assert len(qm9.load_qm9_graphs(progress=False, subset=N_TOTAL + 5).table) == N_TOTAL
    monkeypatch.setenv("ELX_QM9_SUBSET", "0")
    assert len(qm9.load_qm9_graphs(progress=False).table) == N_TOTAL
    assert calls == [N_TOTAL]  # once; then read from the full data set's cache file
    assert [p.name.count("subset") for p in tmp_path.glob("qm9_graphs_*.npz")] == [0]


@pytest.mark.slow
@pytest.mark.parametrize("size", [600, 3000])
def test_subset_equals_all_of_qm9_then_subset(qm9_full, size):
    """Featurizing only the chosen molecules gives exactly the rows of the full featurization."""
    rows = _old_registry_rows(len(qm9_full.table), size)
    _assert_same(qm9.load_qm9_graphs(progress=False, subset=size), qm9_full.subset(rows))
