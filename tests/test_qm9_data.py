"""QM9 loading and featurization on the real data set from qm9pack."""

import numpy as np
import pytest
from rdkit import Chem

from backend.data import qm9


def test_table_has_all_molecules_and_standard_properties(qm9_graphs):
    t = qm9_graphs.table
    assert len(t) == 130_831
    assert [p.name for p in qm9.PROPERTIES] == ["mu", "alpha", "homo", "lumo", "gap", "r2", "zpve",
                                                 "u0", "u298", "h298", "g298", "cv"]
    assert qm9.PROPERTY_BY_NAME["gap"].unit == "Hartree"
    assert qm9.PROPERTY_BY_NAME["mu"].unit == "Debye"
    assert qm9.PROPERTY_BY_NAME["alpha"].unit == "bohr³"
    # gap = lumo - homo, in Hartree (values of order 0.25 Ha, i.e. ~7 eV)
    assert np.allclose(t["gap"], t["lumo"] - t["homo"], atol=2e-4)
    assert 0.1 < t["gap"].median() < 0.5
    assert t["representable"].all(), t.loc[~t["representable"], "failure"].head()


def test_lookup_by_qm9_index_not_row_position(qm9_graphs):
    t = qm9_graphs.table
    idx = t["qm9_index"].to_numpy()
    # qm9pack leaves out molecules that failed QM9's consistency check: ids have gaps
    gaps = np.flatnonzero(np.diff(idx) > 1)
    assert len(gaps) > 0
    first_gap_row = gaps[0] + 1
    wanted = int(idx[first_gap_row])
    assert wanted != first_gap_row + 1  # row position + 1 is not the id after the first gap
    assert qm9_graphs.row_of(wanted) == first_gap_row
    assert qm9_graphs.row_of(1) == 0 and t["smiles"].iat[0] == "C"
    with pytest.raises(qm9.MoleculeNotFoundError):
        qm9_graphs.row_of(int(idx[gaps[0]]) + 1)


def _round_trip_ok(graphs, row):
    dec = qm9.graph_to_molecule(graphs.types[row], graphs.bonds[row])
    return dec.valid and dec.smiles == qm9.canonical_smiles(graphs.table["smiles"].iat[row])


def test_round_trip_on_real_qm9_sample(qm9_graphs):
    """SMILES -> graph -> molecule with no model reproduces the canonical SMILES (fixed sample)."""
    rows = np.random.default_rng(0).choice(len(qm9_graphs.table), 4000, replace=False)
    ok = sum(_round_trip_ok(qm9_graphs, r) for r in rows)
    print(f"round trip identical: {ok}/{len(rows)}")
    assert ok / len(rows) >= 0.99
    assert ok == len(rows)  # measured over all 130,831 molecules: 0 failures


def test_round_trip_of_every_charged_molecule(qm9_graphs):
    charged_types = [i + 1 for i, (_, q) in enumerate(qm9.ATOM_TYPES) if q != 0]
    charged = np.flatnonzero(np.isin(qm9_graphs.types, charged_types).any(1))
    print(f"charged molecules: {len(charged)}")
    assert len(charged) == 580  # QM9 molecules with formal charges
    bad = [qm9_graphs.table["smiles"].iat[r] for r in charged if not _round_trip_ok(qm9_graphs, r)]
    assert bad == []


@pytest.mark.parametrize("smiles", ["c1cc[nH]c1", "[NH3+]CCC([O-])=O", "C[N+](=O)[O-]",
                                    "[C-]#[N+]C", "c1ccccc1", "O=C1CC2CC(O2)C1=O"])
def test_known_traps_round_trip(smiles):
    g = qm9.smiles_to_graph(smiles)
    assert not np.isin(g.bonds, [4]).any()  # no aromatic bond type, Kekulé orders only
    dec = qm9.graph_to_molecule(g.types, g.bonds)
    assert dec.valid, dec.reason
    assert dec.smiles == qm9.canonical_smiles(smiles)


def test_round_trip_survives_relabelling():
    g = qm9.smiles_to_graph("OC1CC1OC1COC1")
    perm = np.random.default_rng(3).permutation(qm9.MAX_NODES)
    gp = g.permuted(perm)
    assert qm9.graph_to_molecule(gp.types, gp.bonds).smiles == qm9.canonical_smiles("OC1CC1OC1COC1")


def test_tiebreak_separates_symmetric_atoms_only():
    g = qm9.smiles_to_graph("C1CCC1")  # four equivalent carbons
    assert sorted(g.tiebreak[:4]) == [0, 1, 2, 3]
    g = qm9.smiles_to_graph("CC(C)O")  # two equivalent methyls, unique C and O
    assert sorted(g.tiebreak[:4]) == [0, 0, 0, 1]


@pytest.mark.parametrize("text, error", [
    ("C1CC", qm9.InvalidSmilesError), ("not a smiles", qm9.InvalidSmilesError),
    ("", qm9.InvalidSmilesError), ("CCCl", qm9.UnsupportedElementError),
    ("CS", qm9.UnsupportedElementError), ("C[O+](C)C", qm9.UnsupportedElementError),
    ("CCCCCCCCCC", qm9.TooManyAtomsError),
])
def test_bad_input_raises_specific_error(text, error):
    with pytest.raises(error) as info:
        qm9.smiles_to_graph(text)
    assert str(info.value)  # a readable message
    assert isinstance(info.value, qm9.MoleculeError)


def test_validity_needs_one_component_and_never_raises():
    g = qm9.smiles_to_graph("CC.O")
    dec = qm9.graph_to_molecule(g.types, g.bonds)
    assert not dec.valid and "component" in dec.reason and dec.smiles == "CC.O"
    types = np.zeros(9, int); types[:2] = 4  # F-F-F chain: valence violation
    types[2] = 4
    bonds = np.zeros((9, 9), int); bonds[0, 1] = bonds[1, 0] = bonds[1, 2] = bonds[2, 1] = 1
    dec = qm9.graph_to_molecule(types, bonds)
    assert not dec.valid and "sanitization" in dec.reason
    assert not qm9.graph_to_molecule(np.zeros(9, int), np.zeros((9, 9), int)).valid


def test_split_is_seeded_80_10_10():
    a, b = qm9.split_labels(1000, 0), qm9.split_labels(1000, 0)
    assert (a == b).all() and not (a == qm9.split_labels(1000, 1)).all()
    counts = {s: int((a == s).sum()) for s in ("train", "valid", "test")}
    assert counts == {"train": 800, "valid": 100, "test": 100}


def test_featurization_cache_is_reused(qm9_graphs, tmp_path):
    from pathlib import Path

    files = list(Path(qm9.cache_dir()).glob("qm9_graphs_*.npz"))
    assert files, "featurized graphs are cached on disk"
    again = qm9.load_qm9_graphs(progress=False)
    assert np.array_equal(again.bonds, qm9_graphs.bonds)
    assert np.array_equal(again.table["split"], qm9_graphs.table["split"])


def test_qm9pack_is_found_without_import():
    import subprocess
    import sys

    folder = qm9.qm9pack_data_dir()
    assert (folder / "qm9_part1.csv").exists()
    code = ("import sys; from backend.data.qm9 import qm9pack_data_dir; qm9pack_data_dir(); "
            "sys.exit(1 if 'qm9pack' in sys.modules else 0)")
    root = str(__import__("pathlib").Path(__file__).resolve().parents[1])
    assert subprocess.run([sys.executable, "-c", code], cwd=root).returncode == 0
    mol = Chem.MolFromSmiles("CO")
    assert qm9.mol_to_graph(mol).types[:2].tolist() == [1, 3]
