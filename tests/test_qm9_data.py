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


# --------------------------------------------------------------------------- typed molecules
# A user types SMILES on the Interpolation and Orbits pages. Each refusal is a MoleculeError
# subclass (the pages catch ``entry.text_errors``) whose message names the input and says what
# to do; stereo and explicit hydrogens are normalised away before the checks and the look-up.

def _tiny_graphs(smiles: list[str], qm9_index: list[int] | None = None) -> qm9.QM9Graphs:
    """A QM9Graphs of a few molecules, with ``canonical_smiles`` stored the way the
    featurization stores it (``Chem.MolToSmiles`` of the parsed SMILES, stereo kept)."""
    import pandas as pd

    graphs = [qm9.mol_to_graph(qm9.parse_smiles(s)) for s in smiles]
    table = pd.DataFrame({"qm9_index": qm9_index or list(range(1, len(smiles) + 1)),
                          "smiles": smiles,
                          "canonical_smiles": [Chem.MolToSmiles(qm9.parse_smiles(s)) for s in smiles]})
    return qm9.QM9Graphs(table, np.stack([g.types for g in graphs]), np.stack([g.bonds for g in graphs]),
                         np.stack([g.tiebreak for g in graphs]))


def _typed_entry(graphs: qm9.QM9Graphs):
    """The QM9 registry entry with a tiny data set and no model (encoding returns a marker)."""
    from backend import registry

    class Entry(registry.QM9GraphVAEEntry):
        def dataset(self):
            return graphs

        def encode_inputs(self, inputs):
            return "encoded now"

    return Entry()


class _Encoded:
    def codes(self, order):
        return [f"{order} code of row {r}" for r in range(100)]


@pytest.mark.parametrize("text, unpaired", [("C[CH2]", 1), ("[CH3]", 1), ("[O][O]", 2)])
def test_typed_radical_is_refused_not_read_as_closed_shell(text, unpaired):
    with pytest.raises(qm9.RadicalError) as info:
        qm9.molecule_from_text(text)
    msg = str(info.value)
    assert text in msg and f"{unpaired} unpaired electron" in msg and "closed-shell" in msg
    with pytest.raises(qm9.RadicalError):  # the featurization refuses too: C[CH2] is not ethane
        qm9.smiles_to_graph(text)
    entry = _typed_entry(_tiny_graphs(["CC", "C", "OO"]))
    with pytest.raises(qm9.RadicalError) as info:
        entry.endpoint_from_text(text, _Encoded(), "stored")
    assert isinstance(info.value, entry.text_errors)


def test_radical_message_suggests_the_closed_shell_molecule():
    with pytest.raises(qm9.RadicalError, match=r"closed-shell molecule is CC\)"):
        qm9.molecule_from_text("C[CH2]")


@pytest.mark.parametrize("text, label, natural", [("[2H]C", "[2H]", "C"), ("[13CH4]", "[13C]", "C"),
                                                  ("F/C=C/[2H]", "[2H]", "C=CF")])
def test_isotopes_have_their_own_message(text, label, natural):
    with pytest.raises(qm9.IsotopeError) as info:
        qm9.molecule_from_text(text)
    msg = str(info.value)
    assert text in msg and f"isotope labels ({label}) are not supported" in msg
    assert f"(here: {natural})" in msg and "atom H is not supported" not in msg
    with pytest.raises(qm9.IsotopeError):
        qm9.smiles_to_graph(text)
    with pytest.raises(qm9.IsotopeError):
        _typed_entry(_tiny_graphs(["C"])).endpoint_from_text(text, _Encoded(), "stored")


@pytest.mark.parametrize("text, n", [("CC.O", 2), ("C.C.C", 3), ("CC.Cl", 2)])
def test_fragments_are_refused_as_endpoints(text, n):
    """The validity rule asks for one connected component, so a typed endpoint must have one."""
    with pytest.raises(qm9.DisconnectedError) as info:
        qm9.molecule_from_text(text)
    assert text in str(info.value) and f"{n} fragments" in str(info.value)
    assert "one connected molecule" in str(info.value)
    entry = _typed_entry(_tiny_graphs(["CC", "O"]))
    with pytest.raises(qm9.DisconnectedError):
        entry.endpoint_from_text(text, _Encoded(), "stored")


@pytest.mark.parametrize("error", [qm9.RadicalError, qm9.IsotopeError, qm9.DisconnectedError])
def test_new_refusals_are_molecule_errors(error):
    assert issubclass(error, qm9.MoleculeError) and issubclass(error, ValueError)


@pytest.mark.parametrize("typed, plain", [("[H]/N=C(/C)C#N", "CC(=N)C#N"), ("C/N=C/OC", "COC=NC"),
                                          ("C\\N=C/OC", "COC=NC"), ("C[C@H](O)N", "CC(N)O"),
                                          ("[H]OC([H])([H])[H]", "CO")])
def test_stereo_and_explicit_hydrogens_are_normalised(typed, plain):
    mol = qm9.molecule_from_text(typed)  # accepted, not "atom H is not supported"
    assert Chem.MolToSmiles(mol) == qm9.canonical_smiles(plain) == qm9.canonical_smiles(typed)
    g, h = qm9.smiles_to_graph(typed), qm9.smiles_to_graph(plain)
    assert qm9.graph_to_molecule(g.types, g.bonds).smiles == qm9.canonical_smiles(plain)
    assert sorted(g.types.tolist()) == sorted(h.types.tolist())


def test_lookup_compares_normalised_smiles_on_both_sides():
    """Stored SMILES with stereo (as the featurization keeps it) are found without it, and back."""
    graphs = _tiny_graphs(["CCO", "C/N=C/OC", "C[C@H](O)N", "[H]/N=C/NC=O"])
    assert graphs.table["canonical_smiles"].tolist()[1] == "C/N=C/OC"  # stored with stereo
    assert graphs.rows_of_smiles("COC=NC").tolist() == [1]
    assert graphs.rows_of_smiles("C\\N=C/OC").tolist() == [1]
    assert graphs.rows_of_smiles("CC(N)O").tolist() == [2]
    assert graphs.rows_of_smiles("C[C@@H](N)O").tolist() == [2]
    assert graphs.rows_of_smiles("N=CNC=O").tolist() == [3]
    assert graphs.rows_of_smiles("OCC").tolist() == [0]
    assert graphs.rows_of_smiles("C[CH2]").tolist() == []  # a radical is not ethane


def test_typed_stereo_finds_real_qm9_molecules():
    """QM9 #120 is ``COC=NC``; typed with stereo or explicit H it is still found in the data set."""
    t = qm9.load_qm9_table()
    assert t.loc[t["qm9_index"] == 120, "smiles"].tolist() == ["COC=NC"]
    assert not t["smiles"].str.contains(r"[@/\\]").any()  # QM9's SMILES carry no stereo
    rows = np.flatnonzero(t["qm9_index"].isin([1, 120]) | (t["smiles"] == "N=CNC=O"))
    sub = t.iloc[rows].reset_index(drop=True)
    graphs = _tiny_graphs(sub["smiles"].tolist(), sub["qm9_index"].tolist())
    entry = _typed_entry(graphs)
    code, caption, row = entry.endpoint_from_text("C/N=C/OC", _Encoded(), "stored")
    assert row == int(np.flatnonzero(sub["qm9_index"] == 120)[0])
    assert caption == "QM9 #120: COC=NC" and code == f"stored code of row {row}"
    _, caption, row = entry.endpoint_from_text("[H]/N=C/NC=O", _Encoded(), "random")
    assert row is not None and caption.endswith(": N=CNC=O")
    _, caption, row = entry.endpoint_from_text("[H]/N=C(/C)C#N", _Encoded(), "stored")
    assert row is None and "not in the data set" in caption  # accepted, encoded now
