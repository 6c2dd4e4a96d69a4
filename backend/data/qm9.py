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

import functools
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


class IsotopeError(MoleculeError):
    """The molecule has isotope labels (``[2H]``, ``[13C]``); QM9 and the graphs have none."""


class RadicalError(MoleculeError):
    """The molecule has unpaired electrons; QM9 holds closed-shell molecules only."""


class DisconnectedError(MoleculeError):
    """The text holds more than one molecule (fragments joined by ``.``)."""


class NetChargeError(MoleculeError):
    """The molecule has a net charge: QM9's molecules, and the constrained decode's valid
    molecules, are neutral (zwitterions and nitro groups are, charged atoms are not refused)."""


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


def normalize_mol(mol: Chem.Mol) -> Chem.Mol:
    """The molecule as the featurization sees it: no stereo, no explicit hydrogens.

    Stereo (chiral tags, ``/`` ``\\`` double-bond directions) is removed first,
    so hydrogens written only to carry stereo (``[H]/N=C(/C)C#N``) become
    removable; then every explicit hydrogen is folded into its heavy atom's
    hydrogen count, except isotope-labelled ones (``[2H]``, kept so that
    :func:`check_closed_shell_natural` can refuse them) and hydrogens without
    a heavy neighbour (``[H][H]``). QM9's SMILES carry neither stereo nor
    explicit hydrogens, so a QM9 molecule is unchanged.

    Parameters
    ----------
    mol : rdkit.Chem.Mol
        A sanitized molecule (e.g. from :func:`parse_smiles`); not modified.

    Returns
    -------
    rdkit.Chem.Mol
        A new molecule.

    Notes
    -----
    Source: RDKit, ``Chem.RemoveStereochemistry`` and ``Chem.RemoveHs`` (whose
    defaults keep isotopic hydrogens).
    """
    mol = Chem.Mol(mol)
    Chem.RemoveStereochemistry(mol)
    RDLogger.DisableLog("rdApp.*")  # "not removing hydrogen atom without neighbors"
    try:
        return Chem.RemoveHs(mol)
    finally:
        RDLogger.EnableLog("rdApp.*")


def _isotope_labels(mol: Chem.Mol) -> list[str]:
    """Distinct ``[2H]``-style labels of the isotope-labelled atoms, in atom order."""
    labels = [f"[{a.GetIsotope()}{a.GetSymbol()}]" for a in mol.GetAtoms() if a.GetIsotope()]
    return list(dict.fromkeys(labels))


def _closed_shell_smiles(mol: Chem.Mol) -> str:
    """SMILES of ``mol`` with each unpaired electron replaced by a hydrogen ("" if RDKit fails)."""
    rw = Chem.RWMol(mol)
    for atom in rw.GetAtoms():
        if atom.GetNumRadicalElectrons():
            atom.SetNumRadicalElectrons(0)
            atom.SetNoImplicit(False)
    try:
        Chem.SanitizeMol(rw)
        return Chem.MolToSmiles(rw)
    except Exception:  # RDKit raises several exception types here
        return ""


def check_closed_shell_natural(mol: Chem.Mol, name: str = "the molecule") -> None:
    """Refuse isotope labels and unpaired electrons, which the graphs cannot hold.

    A graph stores element, formal charge and bond orders; hydrogens are
    recomputed by RDKit when decoding. An isotope label or a radical would be
    silently dropped (``C[CH2]`` would become ethane), so both are refused.

    Parameters
    ----------
    mol : rdkit.Chem.Mol
        A molecule, best already :func:`normalize_mol`-ed.
    name : str
        How messages refer to the molecule (e.g. the typed SMILES, quoted).

    Raises
    ------
    IsotopeError
        If any atom carries a mass number (``[2H]``, ``[13C]``).
    RadicalError
        If any atom has unpaired electrons (RDKit's radical count, from SMILES
        brackets with too few hydrogens such as ``[CH2]``).

    Notes
    -----
    Source: RDKit, ``Atom.GetIsotope`` and ``Atom.GetNumRadicalElectrons``.
    """
    if not any(a.GetIsotope() or a.GetNumRadicalElectrons() for a in mol.GetAtoms()):
        return  # the common case, in one pass over the atoms
    labels = _isotope_labels(mol)
    if labels:
        natural = Chem.Mol(mol)
        for atom in natural.GetAtoms():
            atom.SetIsotope(0)
        natural = Chem.MolToSmiles(normalize_mol(natural))
        raise IsotopeError(
            f"{name}: isotope labels ({', '.join(labels)}) are not supported; QM9 and the model know "
            f"natural elements only, so write the atoms without mass numbers (here: {natural})")
    unpaired = sum(a.GetNumRadicalElectrons() for a in mol.GetAtoms())
    if unpaired:
        where = ", ".join(dict.fromkeys(
            a.GetSymbol() for a in mol.GetAtoms() if a.GetNumRadicalElectrons()))
        fixed = _closed_shell_smiles(mol)
        hint = f" (the closed-shell molecule is {fixed})" if fixed else ""
        raise RadicalError(
            f"{name} has {unpaired} unpaired electron(s) (on {where}); QM9 holds closed-shell "
            f"molecules only, so give every atom its full count of hydrogens{hint}")


def molecule_from_text(text: str) -> Chem.Mol:
    """A molecule typed by a user: parsed, normalised and checked.

    The text is parsed (:func:`parse_smiles`), normalised (:func:`normalize_mol`:
    stereo and explicit hydrogens removed), and checked for what the
    featurization cannot represent (:func:`check_closed_shell_natural`) and for
    the project's validity rule (one connected component,
    :data:`VALIDITY_DEFINITION`). Elements and the node budget are checked
    later by :func:`mol_to_graph`.

    Parameters
    ----------
    text : str
        A SMILES string.

    Returns
    -------
    rdkit.Chem.Mol
        The normalised molecule, one connected component.

    Raises
    ------
    InvalidSmilesError
        If RDKit cannot parse or sanitize the text.
    IsotopeError
        For isotope labels such as ``[2H]``.
    RadicalError
        For unpaired electrons such as in ``C[CH2]``.
    DisconnectedError
        For more than one fragment, such as ``CC.O``.
    NetChargeError
        For a net charge other than 0, such as ``C[NH3+]`` (zwitterions such as
        ``[NH3+]CC([O-])=O`` are neutral and accepted).

    Notes
    -----
    Source: RDKit (parsing, ``Chem.GetMolFrags``, ``Chem.GetFormalCharge``).
    """
    mol = normalize_mol(parse_smiles(text))
    name = repr(str(text).strip())
    check_closed_shell_natural(mol, name)
    frags = Chem.GetMolFrags(mol, asMols=True, sanitizeFrags=False)
    if len(frags) > 1:
        parts = " + ".join(Chem.MolToSmiles(f) for f in frags)
        raise DisconnectedError(
            f"{name} has {len(frags)} fragments ({parts}); give one connected molecule")
    net = Chem.GetFormalCharge(mol)
    if net:
        raise NetChargeError(f"{name} has net charge {net:+d}; QM9's molecules (and the model's valid "
                             "decodes) are neutral: give the neutral form")
    return mol


def mol_to_graph(mol: Chem.Mol, max_nodes: int = MAX_NODES) -> MolGraph:
    """Dense graph of an RDKit molecule in its own atom order (hydrogens dropped).

    The molecule is first normalised (:func:`normalize_mol`: stereo and
    explicit hydrogens removed). Fragments are allowed (such a graph decodes
    as invalid); :func:`molecule_from_text` refuses them for typed input.

    Raises
    ------
    IsotopeError, RadicalError
        For isotope labels or unpaired electrons (see :func:`check_closed_shell_natural`).
    UnsupportedElementError
        For an element other than C/N/O/F or a charge state not in ATOM_TYPES.
    TooManyAtomsError
        For more than ``max_nodes`` heavy atoms.
    """
    # One pass over the atoms by index (RDKit's Python sequence wrappers around GetAtoms()
    # cost more than the work): normalise only when there is something to normalise (an
    # explicit hydrogen or stereo), and collect (symbol, charge) and the closed-shell flags.
    n = mol.GetNumAtoms()
    atoms = [mol.GetAtomWithIdx(i) for i in range(n)]
    stereo = any(a.GetChiralTag() != Chem.ChiralType.CHI_UNSPECIFIED or a.GetAtomicNum() == 1
                 for a in atoms) or any(mol.GetBondWithIdx(k).GetStereo() != Chem.BondStereo.STEREONONE
                                        for k in range(mol.GetNumBonds()))
    if stereo:
        mol = normalize_mol(mol)
        n = mol.GetNumAtoms()
        atoms = [mol.GetAtomWithIdx(i) for i in range(n)]
    else:
        mol = Chem.Mol(mol)  # Kekulize below must not change the caller's molecule
    if any(a.GetIsotope() or a.GetNumRadicalElectrons() for a in atoms):
        check_closed_shell_natural(mol)  # raises with the specific message
    Chem.Kekulize(mol, clearAromaticFlags=True)
    keys = [(a.GetSymbol(), a.GetFormalCharge()) for a in (mol.GetAtomWithIdx(i) for i in range(n))]
    for key in keys:
        if key not in _TYPE_INDEX:
            label = key[0] + (f"{key[1]:+d}" if key[1] else "")
            raise UnsupportedElementError(
                f"atom {label} is not supported; the model knows {', '.join(ATOM_LABELS)}"
            )
    if n > max_nodes:
        raise TooManyAtomsError(
            f"molecule has {n} heavy atoms; the model's node budget is {max_nodes}"
        )
    types = np.zeros(max_nodes, np.int8)
    bonds = np.zeros((max_nodes, max_nodes), np.int8)
    types[:n] = [_TYPE_INDEX[key] for key in keys]
    for k in range(mol.GetNumBonds()):
        bond = mol.GetBondWithIdx(k)
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
    """Dense graph from SMILES (see :func:`mol_to_graph`); raises MoleculeError subclasses.

    Fragments are allowed here (for building invalid graphs); typed input goes
    through :func:`molecule_from_text` first, which refuses them.
    """
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

    @property
    def caption(self) -> str:
        """``SMILES · valid`` or ``SMILES · INVALID (reason)``."""
        text = f"{self.smiles or '—'} · {'valid' if self.valid else 'INVALID'}"
        return text + (f" ({self.reason})" if not self.valid and self.reason else "")


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
    """RDKit canonical SMILES of the normalised molecule, the key for look-ups.

    Normalised by :func:`normalize_mol` (no stereo, no explicit hydrogens but
    isotopic ones), so ``C/N=C/OC``, ``C\\N=C/OC`` and ``COC=NC`` share one key,
    as they share one graph.

    Raises
    ------
    InvalidSmilesError
        If RDKit cannot parse or sanitize the string.

    Notes
    -----
    Source: RDKit, ``Chem.MolToSmiles``.
    """
    return Chem.MolToSmiles(normalize_mol(parse_smiles(smiles)))


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

    @functools.cached_property
    def lookup_keys(self) -> np.ndarray:
        """Normalised canonical SMILES of every row, shape (M,), for :meth:`rows_of_smiles`.

        The table's ``canonical_smiles`` with stereo-bearing entries (``@``,
        ``/``, ``\\``) re-canonicalised by :func:`canonical_smiles`; QM9 has
        none, so this is the stored column. Computed once per instance.
        """
        keys = self.table["canonical_smiles"].to_numpy().astype(object)
        marked = np.flatnonzero(pd.Series(keys, dtype=object).str.contains(r"[@/\\]", regex=True))
        for row in marked:
            try:
                keys[row] = canonical_smiles(keys[row])
            except MoleculeError:
                pass
        return keys

    def rows_of_smiles(self, smiles: str) -> np.ndarray:
        """Rows of the molecule ``smiles``, compared by normalised canonical SMILES.

        Stereo and explicit hydrogens are ignored on both sides (the graphs
        have neither), so ``C/N=C/OC`` finds QM9 #120, stored as ``COC=NC``.
        Radicals, isotopes and fragments simply match nothing; typed input
        is checked by :func:`molecule_from_text` before the look-up.

        Returns
        -------
        ndarray of int, row positions (empty if the molecule is not in the table).

        Raises
        ------
        InvalidSmilesError
            If RDKit cannot parse or sanitize ``smiles``.
        """
        canon = canonical_smiles(smiles)
        return np.flatnonzero(self.lookup_keys == canon)

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
SUBSET_SEED = 0  # seed of the rows ``$ELX_QM9_SUBSET`` picks


def subset_size_from_env() -> int:
    """``$ELX_QM9_SUBSET`` as an int; 0 (all of QM9) when unset or empty."""
    return int(os.environ.get("ELX_QM9_SUBSET") or 0)


def subset_rows(n_total: int, size: int, seed: int = SUBSET_SEED) -> np.ndarray:
    """Sorted rows of the seeded random subset of ``size`` out of ``n_total`` molecules.

    The rows ``$ELX_QM9_SUBSET=size`` selects from the full table (row positions
    of :func:`load_qm9_table`, not QM9 indices), shape (size,).
    """
    return np.sort(np.random.default_rng(seed).choice(n_total, size, replace=False))


def load_qm9_graphs(split_seed: int = 0, progress: bool = True, data_dir=None,
                    subset: int | None = None) -> QM9Graphs:
    """QM9 featurized, with a seeded 80/10/10 split; cached on disk.

    Parameters
    ----------
    split_seed : seed of :func:`split_labels`, drawn over all of QM9 (a subset
        keeps each molecule's split label).
    progress : tqdm bar while featurizing.
    data_dir : folder with the CSV files (default: qm9pack's).
    subset : keep only a seeded random subset of this many molecules
        (:func:`subset_rows`); ``None`` reads ``$ELX_QM9_SUBSET``; 0 or at least
        the table's length means all of QM9. Only the chosen molecules are
        featurized, and they are cached in a file of their own; the result
        equals featurizing everything and taking :meth:`QM9Graphs.subset`.

    The first call for all of QM9 parses 130,831 SMILES (about 40 s on one
    core) and writes ``<cache_dir>/qm9_graphs_<key>.npz``; a subset of ``N``
    writes ``qm9_graphs_<key>_subset<N>.npz``; later calls read that file. The
    key hashes the source files' sizes and the featurization version, so a
    changed data set or featurizer rebuilds it.

    Table columns added: ``n_atoms`` (heavy atoms), ``n_rings``,
    ``canonical_smiles`` (RDKit canonical, for search), ``split``,
    ``representable`` (False where featurization failed; see ``failure``).
    """
    folder = Path(data_dir) if data_dir is not None else qm9pack_data_dir()
    table = load_qm9_table(folder)
    n_total = len(table)
    size = subset_size_from_env() if subset is None else int(subset)
    rows = subset_rows(n_total, size) if 0 < size < n_total else None
    split = split_labels(n_total, split_seed)
    if rows is not None:
        table, split = table.iloc[rows].reset_index(drop=True), split[rows]
    sizes = ",".join(f"{f.name}:{f.stat().st_size}" for f in sorted(folder.glob("qm9_part*.csv")))
    key = hashlib.sha1(f"{_CACHE_VERSION}|{sizes}|{n_total}".encode()).hexdigest()[:12]
    suffix = "" if rows is None else f"_subset{len(rows)}"
    path = cache_dir() / f"qm9_graphs_{key}{suffix}.npz"
    # A corrupt cache file is moved aside and featurized again; concurrent first callers
    # featurize once (a file lock) and the write is atomic (backend.cache).
    from backend.cache import CorruptCacheError, load_or_compute_npz

    def _featurize() -> dict[str, np.ndarray]:
        t, b, tb, rings, canon, failures = featurize_table(table, progress=progress)
        rows_failed = np.array(sorted(failures), dtype=np.int64)
        return dict(types=t, bonds=b, tiebreak=tb, n_rings=rings, canonical=canon, fail_rows=rows_failed,
                    fail_msgs=np.array([failures[r] for r in rows_failed], dtype=str))

    def _fits(z: dict[str, np.ndarray]) -> None:
        for name in ("types", "bonds", "tiebreak", "n_rings", "canonical"):
            if z[name].ndim < 1 or len(z[name]) != len(table):
                raise CorruptCacheError(f"{name} has {len(z[name]) if z[name].ndim else 0} rows, "
                                        f"the table {len(table)}")
        if z["types"].ndim != 2 or z["bonds"].shape != z["types"].shape + z["types"].shape[1:]:
            raise CorruptCacheError(f"types {z['types'].shape} and bonds {z['bonds'].shape} are not "
                                    "(M, n) and (M, n, n)")
        if len(z["fail_rows"]) != len(z["fail_msgs"]) or (len(z["fail_rows"]) and not
                                                          0 <= z["fail_rows"].min() <= z["fail_rows"].max() < len(table)):
            raise CorruptCacheError("fail_rows and fail_msgs do not fit the table")

    z = load_or_compute_npz(path, ("types", "bonds", "tiebreak", "n_rings", "canonical", "fail_rows",
                                   "fail_msgs"), _featurize, _fits, compressed=True)
    types, bonds, tiebreak, n_rings, canonical = (z[k] for k in ("types", "bonds", "tiebreak", "n_rings",
                                                                  "canonical"))
    fail_rows, fail_msgs = z["fail_rows"], z["fail_msgs"]
    table = table.copy()
    table["n_atoms"] = (types > 0).sum(1).astype(np.int16)
    table["n_rings"] = n_rings
    table["canonical_smiles"] = canonical
    table["split"] = split
    table["representable"] = True
    table["failure"] = ""
    if len(fail_rows):
        table.loc[fail_rows, "representable"] = False
        table.loc[fail_rows, "failure"] = fail_msgs
    return QM9Graphs(table, types, bonds, tiebreak)
