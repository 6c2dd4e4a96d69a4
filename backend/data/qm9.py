"""QM9 molecules: property table, SMILES <-> dense graph featurization, split.

All of QM9 (130,831 molecules, the ones that passed QM9's consistency check)
comes from the CSV files that the ``qm9pack`` package ships. ``import qm9pack``
fails on current setuptools (its module imports ``pkg_resources``), so the data
folder is located with ``importlib.util.find_spec``, which finds a package
without executing it.

Properties (the 12 standard regression targets of MoleculeNet / PyG's QM9,
stored in the units of the source file; energies stay in Hartree and are
converted to eV only for display with :data:`HARTREE_TO_EV`):

=========  ======================================  ==============
name       description                             unit
=========  ======================================  ==============
mu         dipole moment                           Debye
alpha      isotropic polarizability                bohr³
homo       HOMO energy                             Hartree
lumo       LUMO energy                             Hartree
gap        HOMO-LUMO gap                           Hartree
r2         electronic spatial extent <R²>          bohr²
zpve       zero-point vibrational energy           Hartree
u0         internal energy at 0 K                  Hartree
u298       internal energy at 298.15 K             Hartree
h298       enthalpy at 298.15 K                    Hartree
g298       Gibbs free energy at 298.15 K           Hartree
cv         heat capacity at 298.15 K               cal/(mol·K)
=========  ======================================  ==============

Graphs are dense, heavy atoms only, with a node budget of ``MAX_NODES = 9``:
``types`` of shape (n,) with 0 = empty slot and 1..8 = :data:`ATOM_TYPES`, and
``bonds`` of shape (n, n), symmetric, 0 = none, 1/2/3 = single/double/triple in
the Kekulé form. Aromatic bonds are never stored: with aromatic bond types the
hydrogen on a pyrrole-type nitrogen is lost and ``c1cc[nH]c1`` cannot be
rebuilt ("Can't kekulize mol").

Charge policy: QM9 has 580 molecules with formal charges (zwitterions, nitro
groups, isocyanides). Charged atoms are atom types of their own (``N+``,
``O-``, ``C-``, ``N-``), so every QM9 molecule is representable and decodes
back to itself; hydrogens are implicit and recomputed by RDKit from element,
charge and bond orders.

Source: Ramakrishnan et al., "Quantum chemistry structures and properties of
134 kilo molecules", Scientific Data 1 (2014); data files from ``qm9pack``;
chemistry from RDKit.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from rdkit import Chem, RDLogger

MAX_NODES = 9
HARTREE_TO_EV = 27.211386  # 1 Hartree in eV (CODATA 2018, rounded)

#: Atom types (element, formal charge); index i + 1 in ``types`` is entry i.
ATOM_TYPES: tuple[tuple[str, int], ...] = (
    ("C", 0), ("N", 0), ("O", 0), ("F", 0),
    ("N", 1), ("O", -1), ("C", -1), ("N", -1),
)
ATOM_LABELS = tuple(s + ("+" if q > 0 else "-" if q < 0 else "") for s, q in ATOM_TYPES)
BOND_TYPES = (None, Chem.BondType.SINGLE, Chem.BondType.DOUBLE, Chem.BondType.TRIPLE)
BOND_LABELS = ("none", "single", "double", "triple")
_TYPE_INDEX = {t: i + 1 for i, t in enumerate(ATOM_TYPES)}
_BOND_INDEX = {b: i for i, b in enumerate(BOND_TYPES) if b is not None}
SUPPORTED_ELEMENTS = ("C", "N", "O", "F")


@dataclass(frozen=True)
class Property:
    """One QM9 target: column name in our table, source column, unit, label."""

    name: str
    source: str
    unit: str
    description: str

    @property
    def is_energy(self) -> bool:
        """True when the values are energies in Hartree (convertible to eV)."""
        return self.unit == "Hartree"


PROPERTIES: tuple[Property, ...] = (
    Property("mu", "Dipole_debye", "Debye", "dipole moment"),
    Property("alpha", "Polarizability_bohr3", "bohr³", "isotropic polarizability"),
    Property("homo", "HOMO_au", "Hartree", "HOMO energy"),
    Property("lumo", "LUMO_au", "Hartree", "LUMO energy"),
    Property("gap", "HOMO_LUMO_gap_au", "Hartree", "HOMO-LUMO gap"),
    Property("r2", "R2_bohr2", "bohr²", "electronic spatial extent <R²>"),
    Property("zpve", "ZPVE_au", "Hartree", "zero-point vibrational energy"),
    Property("u0", "InternalEnergy_0K_au", "Hartree", "internal energy at 0 K"),
    Property("u298", "InternalEnergy_298K_au", "Hartree", "internal energy at 298.15 K"),
    Property("h298", "Enthalphy_298K_au", "Hartree", "enthalpy at 298.15 K"),
    Property("g298", "GibbsFreeEnergy_298K_au", "Hartree", "Gibbs free energy at 298.15 K"),
    Property("cv", "Heatcapacity_Cv_cal_mol_K", "cal/(mol·K)", "heat capacity at 298.15 K"),
)
PROPERTY_BY_NAME = {p.name: p for p in PROPERTIES}
VALIDITY_DEFINITION = (
    "valid = RDKit sanitization succeeds and the molecule is one connected component"
)


# --------------------------------------------------------------------------- errors
class MoleculeError(ValueError):
    """Base class for molecules the featurization cannot represent."""


class InvalidSmilesError(MoleculeError):
    """The text is not a SMILES string RDKit can parse."""


class UnsupportedElementError(MoleculeError):
    """The molecule has an element or charge state outside :data:`ATOM_TYPES`."""


class TooManyAtomsError(MoleculeError):
    """The molecule has more heavy atoms than the model's node budget."""


class MoleculeNotFoundError(KeyError):
    """No molecule with that QM9 index in the table."""


# --------------------------------------------------------------------------- files
def qm9pack_data_dir() -> Path:
    """Folder with qm9pack's CSV files, found without importing the package.

    ``import qm9pack`` needs ``pkg_resources`` (gone from new setuptools), so we
    ask the import system where the package lives instead.

    Raises
    ------
    FileNotFoundError
        If qm9pack is not installed or its data folder is missing.
    """
    spec = importlib.util.find_spec("qm9pack")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("qm9pack is not installed: pip install qm9pack")
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    if not (folder / "qm9_part1.csv").exists():
        raise FileNotFoundError(f"qm9pack data files not found in {folder}")
    return folder


def cache_dir() -> Path:
    """Folder for derived files (featurized graphs, latent codes); outside git.

    ``$ELX_CACHE_DIR`` if set, else ``.cache/`` in the repository root.
    """
    root = os.environ.get("ELX_CACHE_DIR")
    path = Path(root) if root else Path(__file__).resolve().parents[2] / ".cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


def load_qm9_table(data_dir: Path | None = None) -> pd.DataFrame:
    """All QM9 molecules with SMILES and the 12 standard properties.

    Parameters
    ----------
    data_dir : Path, optional
        Folder with ``qm9_part{1,2,3}.csv``; defaults to qm9pack's.

    Returns
    -------
    DataFrame with columns ``qm9_index`` (QM9's own 1-based molecule id, the
    key for look-ups: the file skips ids that failed QM9's consistency check,
    so row position is *not* the id), ``smiles`` and the :data:`PROPERTIES`
    names, in their source units. Sorted by ``qm9_index``; 130,831 rows.
    """
    folder = Path(data_dir) if data_dir is not None else qm9pack_data_dir()
    cols = ["Index", "SMILES"] + [p.source for p in PROPERTIES]
    parts = sorted(folder.glob("qm9_part*.csv"))
    if not parts:
        raise FileNotFoundError(f"no qm9_part*.csv in {folder}")
    df = pd.concat([pd.read_csv(f, usecols=cols) for f in parts], ignore_index=True)
    df = df.rename(columns={"Index": "qm9_index", "SMILES": "smiles"})
    df = df.rename(columns={p.source: p.name for p in PROPERTIES})
    df = df[["qm9_index", "smiles"] + [p.name for p in PROPERTIES]]
    return df.sort_values("qm9_index", ignore_index=True)


# --------------------------------------------------------------------------- graphs
@dataclass(frozen=True)
class MolGraph:
    """Dense heavy-atom graph of one molecule.

    Attributes
    ----------
    types : ndarray of shape (n,), int8
        0 = empty slot, i + 1 = ``ATOM_TYPES[i]``.
    bonds : ndarray of shape (n, n), int8
        Symmetric Kekulé bond orders, 0 = none, 1/2/3 = single/double/triple.
    tiebreak : ndarray of shape (n,), int8
        Symmetry-breaking label: 0 for atoms without a symmetric twin, and the
        position of the atom within its class of graph-symmetric atoms
        otherwise (RDKit canonical ranks with ties broken, minus ranks without
        tie breaking). Relabelling the atoms permutes it like any atom feature.
    """

    types: np.ndarray
    bonds: np.ndarray
    tiebreak: np.ndarray

    def permuted(self, perm: np.ndarray) -> "MolGraph":
        """The same graph with slot ``i`` moved from slot ``perm[i]``."""
        perm = np.asarray(perm)
        return MolGraph(self.types[perm], self.bonds[np.ix_(perm, perm)], self.tiebreak[perm])


def parse_smiles(smiles: str) -> Chem.Mol:
    """RDKit molecule from SMILES, with a specific error if unparsable.

    Raises
    ------
    InvalidSmilesError
        If RDKit cannot parse or sanitize the string.
    """
    text = (smiles or "").strip()
    if not text:
        raise InvalidSmilesError("empty SMILES")
    RDLogger.DisableLog("rdApp.*")
    try:
        mol = Chem.MolFromSmiles(text)
    finally:
        RDLogger.EnableLog("rdApp.*")
    if mol is None:
        raise InvalidSmilesError(f"RDKit cannot parse the SMILES {text!r}")
    return mol


def mol_to_graph(mol: Chem.Mol, max_nodes: int = MAX_NODES) -> MolGraph:
    """Dense graph of an RDKit molecule in its own atom order (hydrogens dropped).

    Raises
    ------
    UnsupportedElementError
        For an element other than C/N/O/F or a charge state not in ATOM_TYPES.
    TooManyAtomsError
        For more than ``max_nodes`` heavy atoms.
    """
    mol = Chem.RemoveHs(mol)
    mol = Chem.Mol(mol)
    Chem.Kekulize(mol, clearAromaticFlags=True)
    n = mol.GetNumAtoms()
    for atom in mol.GetAtoms():
        key = (atom.GetSymbol(), atom.GetFormalCharge())
        if key not in _TYPE_INDEX:
            label = atom.GetSymbol() + (f"{key[1]:+d}" if key[1] else "")
            raise UnsupportedElementError(
                f"atom {label} is not supported; the model knows {', '.join(ATOM_LABELS)}"
            )
    if n > max_nodes:
        raise TooManyAtomsError(
            f"molecule has {n} heavy atoms; the model's node budget is {max_nodes}"
        )
    types = np.zeros(max_nodes, np.int8)
    bonds = np.zeros((max_nodes, max_nodes), np.int8)
    for atom in mol.GetAtoms():
        types[atom.GetIdx()] = _TYPE_INDEX[(atom.GetSymbol(), atom.GetFormalCharge())]
    for bond in mol.GetBonds():
        i, j = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        order = _BOND_INDEX.get(bond.GetBondType())
        if order is None:
            raise UnsupportedElementError(f"bond type {bond.GetBondType()} is not supported")
        bonds[i, j] = bonds[j, i] = order
    tiebreak = np.zeros(max_nodes, np.int8)
    if n:
        broken = np.array(Chem.CanonicalRankAtoms(mol, breakTies=True))
        tied = np.array(Chem.CanonicalRankAtoms(mol, breakTies=False))
        tiebreak[:n] = broken - tied
    return MolGraph(types, bonds, tiebreak)


def smiles_to_graph(smiles: str, max_nodes: int = MAX_NODES) -> MolGraph:
    """Dense graph from SMILES (see :func:`mol_to_graph`); raises MoleculeError subclasses."""
    return mol_to_graph(parse_smiles(smiles), max_nodes)


@dataclass(frozen=True)
class DecodedMolecule:
    """A graph turned back into a molecule.

    ``smiles`` is RDKit's canonical SMILES when sanitization succeeds, else a
    SMILES written without sanitization (may be ``""``). ``valid`` follows
    :data:`VALIDITY_DEFINITION`; ``reason`` says why not.
    """

    mol: Chem.Mol | None
    smiles: str
    valid: bool
    reason: str = ""


def graph_to_molecule(types: np.ndarray, bonds: np.ndarray) -> DecodedMolecule:
    """RDKit molecule, canonical SMILES and validity of a dense graph.

    Parameters
    ----------
    types : array of shape (n,), ints in 0..len(ATOM_TYPES)
    bonds : array of shape (n, n), ints in 0..3; only the upper triangle is read.

    Never raises for chemically impossible graphs: those come back with
    ``valid=False`` and a reason.
    """
    types = np.asarray(types)
    bonds = np.asarray(bonds)
    keep = np.flatnonzero(types > 0)
    rw = Chem.RWMol()
    for slot in keep:
        symbol, charge = ATOM_TYPES[int(types[slot]) - 1]
        atom = Chem.Atom(symbol)
        atom.SetFormalCharge(charge)
        rw.AddAtom(atom)
    for a, i in enumerate(keep):
        for b in range(a + 1, len(keep)):
            order = int(bonds[i, keep[b]])
            if order:
                rw.AddBond(a, b, BOND_TYPES[order])
    mol = rw.GetMol()
    if len(keep) == 0:
        return DecodedMolecule(None, "", False, "no atoms")
    RDLogger.DisableLog("rdApp.*")
    try:
        Chem.SanitizeMol(mol)
    except Exception as exc:  # RDKit raises several exception types here
        raw = Chem.MolToSmiles(mol, canonical=False) if mol is not None else ""
        return DecodedMolecule(mol, raw, False, f"sanitization failed: {exc}")
    finally:
        RDLogger.EnableLog("rdApp.*")
    smiles = Chem.MolToSmiles(mol)
    if len(Chem.GetMolFrags(mol)) > 1:
        return DecodedMolecule(mol, smiles, False, "more than one connected component")
    return DecodedMolecule(mol, smiles, True)


def canonical_smiles(smiles: str) -> str:
    """RDKit canonical SMILES of a SMILES string (raises InvalidSmilesError)."""
    return Chem.MolToSmiles(parse_smiles(smiles))


# --------------------------------------------------------------------------- dataset
@dataclass(frozen=True)
class QM9Graphs:
    """Featurized QM9, row-aligned with :func:`load_qm9_table`.

    Attributes
    ----------
    table : DataFrame, one row per molecule (qm9_index, smiles, properties,
        n_atoms, n_rings, split, representable).
    types : ndarray of shape (M, 9), int8
    bonds : ndarray of shape (M, 9, 9), int8
    tiebreak : ndarray of shape (M, 9), int8
    """

    table: pd.DataFrame
    types: np.ndarray
    bonds: np.ndarray
    tiebreak: np.ndarray

    def row_of(self, qm9_index: int) -> int:
        """Row position of a molecule given its QM9 index.

        Raises
        ------
        MoleculeNotFoundError
            If no molecule has that index.
        """
        idx = self.table["qm9_index"].to_numpy()
        pos = int(np.searchsorted(idx, qm9_index))
        if pos >= len(idx) or idx[pos] != qm9_index:
            raise MoleculeNotFoundError(f"no QM9 molecule with index {qm9_index}")
        return pos

    def graph(self, row: int) -> MolGraph:
        """The stored-order graph of row ``row``."""
        return MolGraph(self.types[row], self.bonds[row], self.tiebreak[row])

    def rows_of_smiles(self, smiles: str) -> np.ndarray:
        """Rows whose canonical SMILES equals that of ``smiles`` (raises InvalidSmilesError)."""
        canon = canonical_smiles(smiles)
        return np.flatnonzero(self.table["canonical_smiles"].to_numpy() == canon)

    def subset(self, rows: np.ndarray) -> "QM9Graphs":
        """A new QM9Graphs with only ``rows`` (table index reset)."""
        rows = np.asarray(rows)
        return QM9Graphs(
            self.table.iloc[rows].reset_index(drop=True),
            self.types[rows], self.bonds[rows], self.tiebreak[rows],
        )


def split_labels(n: int, seed: int = 0, fractions=(0.8, 0.1, 0.1)) -> np.ndarray:
    """Seeded random 80/10/10 ``train``/``valid``/``test`` labels, shape (n,)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_train = int(round(fractions[0] * n))
    n_valid = int(round(fractions[1] * n))
    labels = np.empty(n, dtype=object)
    labels[order[:n_train]] = "train"
    labels[order[n_train:n_train + n_valid]] = "valid"
    labels[order[n_train + n_valid:]] = "test"
    return labels


def featurize_table(table: pd.DataFrame, progress: bool = False):
    """Featurize every SMILES of ``table``.

    Returns ``(types (M, 9), bonds (M, 9, 9), tiebreak (M, 9), n_rings (M,),
    canonical (M,) RDKit canonical SMILES, failures)`` where ``failures`` maps row -> error message for molecules that
    could not be represented (their rows are all-empty graphs). Failures are
    returned, never dropped silently.
    """
    m = len(table)
    types = np.zeros((m, MAX_NODES), np.int8)
    bonds = np.zeros((m, MAX_NODES, MAX_NODES), np.int8)
    tiebreak = np.zeros((m, MAX_NODES), np.int8)
    n_rings = np.zeros(m, np.int16)
    canonical = np.empty(m, dtype=object)
    canonical[:] = ""
    failures: dict[int, str] = {}
    smiles = table["smiles"].tolist()
    iterator = range(m)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="featurizing QM9", unit="mol")
    for row in iterator:
        try:
            mol = parse_smiles(smiles[row])
            g = mol_to_graph(mol)
        except MoleculeError as exc:
            failures[row] = str(exc)
            continue
        types[row], bonds[row], tiebreak[row] = g.types, g.bonds, g.tiebreak
        n_rings[row] = mol.GetRingInfo().NumRings()
        canonical[row] = Chem.MolToSmiles(mol)
    return types, bonds, tiebreak, n_rings, canonical.astype(str), failures


_CACHE_VERSION = "qm9-graphs-v2"


def load_qm9_graphs(split_seed: int = 0, progress: bool = True, data_dir=None) -> QM9Graphs:
    """All of QM9 featurized, with a seeded 80/10/10 split; cached on disk.

    The first call parses 130,831 SMILES (about 40 s on one core) and writes
    ``<cache_dir>/qm9_graphs_<key>.npz``; later calls read that file. The key
    hashes the source files' sizes and the featurization version, so a changed
    data set or featurizer rebuilds it.

    Table columns added: ``n_atoms`` (heavy atoms), ``n_rings``,
    ``canonical_smiles`` (RDKit canonical, for search), ``split``,
    ``representable`` (False where featurization failed; see ``failure``).
    """
    folder = Path(data_dir) if data_dir is not None else qm9pack_data_dir()
    table = load_qm9_table(folder)
    sizes = ",".join(f"{f.name}:{f.stat().st_size}" for f in sorted(folder.glob("qm9_part*.csv")))
    key = hashlib.sha1(f"{_CACHE_VERSION}|{sizes}|{len(table)}".encode()).hexdigest()[:12]
    path = cache_dir() / f"qm9_graphs_{key}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            types, bonds, tiebreak, n_rings = z["types"], z["bonds"], z["tiebreak"], z["n_rings"]
            canonical = z["canonical"]
            fail_rows, fail_msgs = z["fail_rows"], z["fail_msgs"]
    else:
        types, bonds, tiebreak, n_rings, canonical, failures = featurize_table(table, progress=progress)
        fail_rows = np.array(sorted(failures), dtype=np.int64)
        fail_msgs = np.array([failures[r] for r in fail_rows], dtype=str)
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, types=types, bonds=bonds, tiebreak=tiebreak, n_rings=n_rings,
                            canonical=canonical, fail_rows=fail_rows, fail_msgs=fail_msgs)
        tmp.replace(path)
    table = table.copy()
    table["n_atoms"] = (types > 0).sum(1).astype(np.int16)
    table["n_rings"] = n_rings
    table["canonical_smiles"] = canonical
    table["split"] = split_labels(len(table), split_seed)
    table["representable"] = True
    table["failure"] = ""
    if len(fail_rows):
        table.loc[fail_rows, "representable"] = False
        table.loc[fail_rows, "failure"] = fail_msgs
    return QM9Graphs(table, types, bonds, tiebreak)
