"""The molecules family: QM9 as a domain, relabelling atoms as its input action, the graph VAE.

* :class:`GraphBatch` holds dense heavy-atom graphs (types, bonds, tie-break labels) and
  :class:`NodeRelabelling` acts on them as ``P·A·Pᵀ`` (S_n on the inputs; typed
  :class:`~backend.families.base.Permutations`);
* :class:`QM9Domain` loads featurized QM9 (:mod:`backend.data.qm9`), draws molecules with RDKit
  and resolves typed SMILES;
* :class:`GraphVAEModel` wraps the permutation-equivariant graph VAE of ``models/graph_vae.py``
  (codes (n, d), latent action S_n on the node axis, exactly equivariant: ``E(P·G) = P·E(G)``);
* :data:`GRAPH_VAE_QM9` and :data:`GRAPH_VAE_QM9_V1` are the shipped specs;
* :class:`QM9GraphVAEEntry` is their registry entry (with the family's older helpers).

Sources: QM9 (Ramakrishnan et al., Scientific Data 2014); permutation-equivariant graph layers
(Maron et al., *Invariant and Equivariant Graph Networks*, ICLR 2019); the S_n latent action and
its sorting cross-section (Hansen, Calissano & Feragen, ICML 2024, Sec. 4.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backend.data import qm9
from backend.entry import ModelEntry, spec_like
from backend.families.base import ColorOption, Domain, EvaluationPlan, InputAction, LatentModel, ModelSpec, Permutations
from backend.groups import LatentCodes, PermutationAction
from backend.latents import random_node_orders


def _short(text, limit: int = 40) -> str:
    """User text cut to ``limit`` characters for messages."""
    text = str(text)
    return text if len(text) <= limit else text[:limit] + "..."


def parse_relabelling(text: str, n: int) -> np.ndarray:
    """A relabelling of ``n`` node slots typed as whole numbers, e.g. ``"1 0 2"``.

    Numbers are separated by spaces and/or commas; one pair of enclosing brackets (``[1, 0, 2]``)
    is allowed. Slot ``i`` of the relabelled input takes slot ``p[i]``, the convention of
    :class:`~backend.groups.PermutationAction`.

    Parameters
    ----------
    text : str
        What the user typed.
    n : int
        Number of node slots.

    Returns
    -------
    ndarray of shape (n,), int64
        A permutation of ``0 .. n-1``.

    Raises
    ------
    ValueError
        For every bad text, with a message saying what is wrong: empty, a token that is not a
        whole number, the wrong count, a number outside ``0 .. n-1`` (however large; nothing
        overflows), a repeated number.
    """
    want = f"a relabelling lists each slot 0..{n - 1} once, e.g. {' '.join(map(str, range(n)))}"
    body = str(text).strip()
    if body[:1] + body[-1:] in ("[]", "()"):
        body = body[1:-1]
    tokens = body.replace(",", " ").split()
    if not tokens:
        raise ValueError(f"no relabelling typed; {want}")
    values = []
    for tok in tokens:
        try:
            values.append(int(tok))
        except ValueError:
            raise ValueError(f"{_short(tok)!r} is not a whole number; {want}") from None
    if len(values) != n:
        raise ValueError(f"got {len(values)} number(s) in {_short(text)!r}; {want}")
    outside = [v for v in values if not 0 <= v < n]
    if outside:
        raise ValueError(f"slot {_short(outside[0])} is out of range; {want}")
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        missing = sorted(set(range(n)) - set(values))
        raise ValueError(f"slot {repeated[0]} appears more than once and slot {missing[0]} is missing; {want}")
    return np.array(values, dtype=np.int64)


@dataclass(frozen=True)
class GraphBatch:
    """Dense heavy-atom graphs, the inputs of the molecules family.

    Attributes
    ----------
    types : ndarray (B, n), int8, 0 = empty slot (see :class:`backend.data.qm9.MolGraph`).
    bonds : ndarray (B, n, n), int8, Kekulé bond orders.
    tiebreak : ndarray (B, n), int8, symmetry-breaking atom labels.
    """

    types: np.ndarray
    bonds: np.ndarray
    tiebreak: np.ndarray

    @classmethod
    def from_graphs(cls, graphs: list[qm9.MolGraph]) -> "GraphBatch":
        """Stack single graphs (all with the same node budget)."""
        return cls(*(np.stack([getattr(g, k) for g in graphs]) for k in ("types", "bonds", "tiebreak")))

    def __len__(self) -> int:
        return len(self.types)

    def __getitem__(self, idx) -> "GraphBatch":
        idx = [idx] if isinstance(idx, (int, np.integer)) else idx
        return GraphBatch(self.types[idx], self.bonds[idx], self.tiebreak[idx])

    @property
    def mask(self) -> np.ndarray:
        """Real atoms (B, n), bool."""
        return self.types > 0


class NodeRelabelling(InputAction):
    """S_n on molecular graphs: relabel the ``n`` atom slots, ``A -> P·A·Pᵀ``.

    Elements are :class:`~backend.families.base.Permutations`; slot ``i`` of the result holds old
    slot ``p[i]`` (types, tie-breaks and both bond axes move together).

    Parameters
    ----------
    n : int, number of node slots (9 for QM9).
    """

    widget = "relabelling"
    element_type = Permutations
    description = "S_n: relabelling the heavy atoms (node order)"

    def __init__(self, n: int):
        self.n = int(n)

    def __repr__(self) -> str:
        return f"NodeRelabelling(n={self.n})"

    def random_elements(self, count: int, seed: int) -> Permutations:
        """``count`` uniformly random relabellings (the sidebar's random node order), (count, n)."""
        return Permutations(random_node_orders(count, self.n, seed))

    def orbit_elements(self, count: int, seed: int = 0) -> Permutations:
        """The identity and ``count - 1`` seeded random relabellings."""
        a = PermutationAction(self.n, 1)
        rng = np.random.default_rng(seed)
        return Permutations(np.concatenate([a.identity[None], a.random_element(rng, max(count - 1, 1))])[:count])

    def act(self, inputs: GraphBatch, elements: Permutations) -> GraphBatch:
        """Relabelled graphs; one graph with G elements gives G copies, one element relabels all.

        Raises
        ------
        ValueError
            If the batch sizes differ (and neither is 1) or the slot counts do not match.
        """
        p = self.as_elements(elements).values  # (G, n)
        if p.shape[1] != inputs.types.shape[1]:
            raise ValueError(f"relabellings of {p.shape[1]} slots for graphs of {inputs.types.shape[1]}")
        b = max(len(inputs), len(p))
        if len(inputs) not in (1, b) or len(p) not in (1, b):
            raise ValueError(f"{len(inputs)} graphs and {len(p)} relabellings")
        p = np.broadcast_to(p, (b, p.shape[1]))
        types, bonds, tie = (np.broadcast_to(a, (b, *a.shape[1:])) for a in (inputs.types, inputs.bonds, inputs.tiebreak))
        return GraphBatch(np.take_along_axis(types, p, axis=1),
                          bonds[np.arange(b)[:, None, None], p[:, :, None], p[:, None, :]],
                          np.take_along_axis(tie, p, axis=1))

    def parse(self, text: str) -> Permutations:
        """One relabelling typed as slot numbers; see :func:`parse_relabelling` (ValueError with a message)."""
        return Permutations(parse_relabelling(text, self.n))

    def label(self, element: Permutations) -> str:
        """``relabel 1 0 2 ...``."""
        return "relabel " + " ".join(map(str, self.as_elements(element).values[0].tolist()))

    def example_text(self) -> str:
        """A relabelling to show in an empty text box: every slot moved by one."""
        return " ".join(map(str, np.roll(np.arange(self.n), 1)))


@dataclass(frozen=True)
class ConstrainedMolecule(qm9.DecodedMolecule):
    """A molecule from the constrained decode: the decoded molecule plus the solve's ``optimal``
    flag (proven most probable valid graph), ``status`` (``optimal`` / ``time_limit`` /
    ``fallback``), ``log_likelihood`` (nats), ``seconds`` and the ``time_limit`` (s) it ran under."""

    optimal: bool = True
    status: str = "optimal"
    log_likelihood: float = float("nan")
    seconds: float = 0.0
    time_limit: float = float("nan")

    @property
    def caption(self) -> str:
        """As :class:`~backend.data.qm9.DecodedMolecule`, plus a note when not proven optimal."""
        text = super().caption
        if not self.optimal:
            text += f" · NOT proven optimal ({self.status}, {self.time_limit:g} s limit)"
        return text


class QM9Domain(Domain):
    """QM9 molecules: featurized graphs, 12 properties with units, RDKit drawings, SMILES look-up.

    Data: :class:`backend.data.qm9.QM9Graphs` with the sidecar's split seed; ``$ELX_QM9_SUBSET=N``
    featurizes only N seeded rows (cached apart).
    """

    family = "molecules"
    name = "QM9"
    item_noun = "molecule"
    id_col = "qm9_index"
    hover_label_col = "smiles"
    search_label = "SMILES"
    search_defaults = ("CC(=O)O", "c1ccoc1")
    validity_note = qm9.VALIDITY_DEFINITION
    overview_note = ("**Charged molecules.** QM9 holds 580 molecules with formal charges (zwitterions, nitro "
                     "groups, isocyanides). They are modelled, not excluded: `N+`, `O-`, `C-` and `N-` are atom "
                     "types of their own, so every one of the 130,831 molecules is representable.")
    text_errors = (qm9.MoleculeError,)
    presentation_label = "Node order of the inputs"
    order_labels = {"random": "random", "stored": "stored"}
    order_help = ("random: every molecule's atoms relabelled by a seeded random permutation; "
                  "stored: the order of the QM9 file.")
    max_nodes = qm9.MAX_NODES

    def load(self, sidecar: dict) -> qm9.QM9Graphs:
        """Featurized QM9 with the sidecar's ``data.split_seed`` (a subset with ``$ELX_QM9_SUBSET``)."""
        split_seed = sidecar.get("data", {}).get("split_seed", 0)
        return qm9.load_qm9_graphs(split_seed=split_seed, progress=False, subset=qm9.subset_size_from_env())

    def loading_message(self) -> str:
        """First start: featurizing all of QM9 takes about a minute (a subset: seconds)."""
        subset = qm9.subset_size_from_env()
        suffix = f"_subset{subset}" if subset > 0 else ""
        cached = any(p.name.endswith(f"{suffix}.npz") and (subset > 0 or "_subset" not in p.name)
                     for p in qm9.cache_dir().glob("qm9_graphs_*.npz"))
        what = f"a seeded subset of {subset:,} molecules, $ELX_QM9_SUBSET" if subset > 0 else "130,831 molecules"
        if cached:
            return f"Loading QM9 ({what}) from the feature cache..."
        return f"Loading QM9 ({what}): the first start featurizes them with RDKit (all of QM9: about a minute)..."

    def inputs(self, data: qm9.QM9Graphs, rows=None) -> GraphBatch:
        """Graphs of ``rows`` (default all) in stored node order."""
        rows = slice(None) if rows is None else rows
        return GraphBatch(data.types[rows], data.bonds[rows], data.tiebreak[rows])

    def mask(self, data: qm9.QM9Graphs) -> np.ndarray:
        """Real atom slots (M, n) in stored order."""
        return data.types > 0

    def color_options(self) -> list[ColorOption]:
        """The 12 properties (energies shown in eV), atom and ring counts."""
        opts = [ColorOption(p.name, f"{p.description} ({p.name})", "eV", scale=qm9.HARTREE_TO_EV)
                if p.is_energy else ColorOption(p.name, f"{p.description} ({p.name})", p.unit)
                for p in qm9.PROPERTIES]
        return opts + [ColorOption("n_atoms", "heavy atoms", "count", categorical=True),
                       ColorOption("n_rings", "rings", "count", categorical=True)]

    def describe_row(self, data: qm9.QM9Graphs, row: int) -> dict:
        """``qm9_index``, ``smiles`` and ``title`` (``QM9 #120: COC=NC``)."""
        idx, smi = int(data.table["qm9_index"].iat[row]), str(data.table["smiles"].iat[row])
        return {"qm9_index": idx, "smiles": smi, "title": f"QM9 #{idx}: {smi}"}

    def render(self, item, size: tuple[int, int] = (260, 200)) -> str:
        """SVG of a SMILES, a decoded molecule (invalid ones carry a red INVALID mark) or a
        :class:`GraphBatch` of one (atoms labelled with their index, to show a relabelling)."""
        from backend.plots import molecule_svg

        if isinstance(item, str):
            return molecule_svg(qm9.parse_smiles(item), size=size)
        if isinstance(item, GraphBatch):
            dec = qm9.graph_to_molecule(item.types[0], item.bonds[0])
            mol = dec.mol
            if mol is not None:
                from rdkit import Chem

                mol = Chem.Mol(mol)
                for atom in mol.GetAtoms():
                    atom.SetProp("atomNote", str(atom.GetIdx()))
            return molecule_svg(mol, size=size, valid=dec.valid, reason=dec.reason)
        return molecule_svg(item.mol, size=size, valid=item.valid, reason=item.reason)

    def render_row(self, data: qm9.QM9Graphs, row: int, size: tuple[int, int] = (260, 200)) -> str:
        """SVG of the molecule at ``row`` drawn from its SMILES (no slot labels)."""
        return self.render(str(data.table["smiles"].iat[row]), size)

    def resolve(self, data: qm9.QM9Graphs, text: str) -> tuple[int | None, GraphBatch | None]:
        """A typed SMILES: its row when QM9 has it (stereo and explicit H normalised, so
        ``C/N=C/OC`` is QM9 #120), else its graph.

        Raises
        ------
        backend.data.qm9.MoleculeError
            InvalidSmilesError, IsotopeError, RadicalError, DisconnectedError, NetChargeError,
            UnsupportedElementError, TooManyAtomsError.
        """
        qm9.molecule_from_text(text)  # refuses what the graphs cannot hold, before any look-up
        rows = data.rows_of_smiles(text)
        if len(rows):
            return int(rows[0]), None
        return None, GraphBatch.from_graphs([qm9.smiles_to_graph(text, self.max_nodes)])

    def cache_tag(self, data: qm9.QM9Graphs) -> str:
        """Row count and a checksum of the QM9 indices."""
        rows = data.table["qm9_index"].to_numpy()
        return f"{len(rows)}_{int(rows.sum()) % 1_000_003}"

    def path_summary(self, decoded: list) -> str:
        """Valid steps and distinct valid molecules along a decoded path."""
        n_valid = sum(bool(d.valid) for d in decoded)
        return f"{n_valid}/{len(decoded)} valid, {len({d.smiles for d in decoded if d.valid})} distinct"


QM9 = QM9Domain()


class GraphVAEModel(LatentModel):
    """The permutation-equivariant graph VAE (``models/graph_vae.py``): posterior means as codes.

    Parameters
    ----------
    weights_path : Path, a state_dict (loaded strictly with ``weights_only=True`` on first use).
    sidecar : dict, its JSON sidecar (``model_config``: ``n_nodes``, ``latent_dim``, ...).
    """

    constrained_decode_label = "most probable valid molecule (constrained decode)"
    constrained_time_limit = 2.0  #: per-code time limit (s) of the constrained decode's MILP

    def __init__(self, weights_path: Path, sidecar: dict):
        self.weights_path, self.sidecar = Path(weights_path), sidecar
        cfg = sidecar["model_config"]
        self.latent_action = PermutationAction(cfg["n_nodes"], cfg["latent_dim"])
        self.input_action = NodeRelabelling(cfg["n_nodes"])

    def build_module(self):
        """:class:`models.graph_vae.GraphVAE` from the sidecar's config, strict-loaded, eval mode."""
        import torch

        from models.graph_vae import GraphVAE, GraphVAEConfig

        model = GraphVAE(GraphVAEConfig(**self.sidecar["model_config"]))
        model.load_state_dict(torch.load(self.weights_path, map_location="cpu", weights_only=True), strict=True)
        return model.eval()

    def encode_arrays(self, types, bonds, tiebreak) -> np.ndarray:
        """Posterior means (B, n, d), float32, of graphs given as arrays (B, n), (B, n, n), (B, n)."""
        import torch

        from backend.encoding import one_torch_thread

        with one_torch_thread(), torch.inference_mode():
            mu, _ = self.module.encode(*(torch.from_numpy(np.asarray(a, dtype=np.int64))
                                         for a in (types, bonds, tiebreak)))
        return mu.numpy().astype(np.float32)

    def encode(self, inputs: GraphBatch) -> LatentCodes:
        """Codes (B, n, d) with node masks."""
        return LatentCodes(self.encode_arrays(inputs.types, inputs.bonds, inputs.tiebreak),
                           self.latent_action, inputs.mask)

    def decode(self, codes: LatentCodes) -> list[qm9.DecodedMolecule]:
        """The model's own decode (argmax of every slot and pair), with validity and reason."""
        import torch

        with torch.no_grad():
            types, bonds = self.module.decode(torch.from_numpy(np.array(codes.values)))
        return [qm9.graph_to_molecule(t, b) for t, b in zip(types.numpy(), bonds.numpy())]

    def decode_constrained(self, codes: LatentCodes) -> list[ConstrainedMolecule]:
        """The most probable *valid* molecule of each code under the decoder's own probabilities
        (valence, net charge 0, one connected component), by the MILP of
        :func:`backend.decoding.molecule.constrained_decode` (HiGHS), with its proof status."""
        import torch

        from backend.decoding import constrained_decode
        from backend.encoding import one_torch_thread

        with one_torch_thread():
            graphs = constrained_decode(self.module, torch.from_numpy(np.array(codes.values)),
                                        time_limit=self.constrained_time_limit)
        out = []
        for g in graphs:
            mol = qm9.graph_to_molecule(g.types, g.bonds)
            out.append(ConstrainedMolecule(mol.mol, mol.smiles, mol.valid, mol.reason, g.optimal, g.status,
                                           g.log_likelihood, g.seconds, self.constrained_time_limit))
        return out

    def latent_elements(self, elements: Permutations) -> np.ndarray:
        """The same permutations: the encoder is exactly S_n-equivariant, ``E(P·G) = P·E(G)``."""
        return self.input_action.as_elements(elements).values

    def headline_metrics(self) -> list[tuple[str, str]]:
        """Exact reconstruction, validity (test codes, prior) and atom-type accuracy, in %."""
        m = self.sidecar.get("metrics_test", {})
        out = [("Exact reconstruction (test, argmax decode)", f"{100 * m.get('exact_reconstruction', 0):.1f} %"),
               ("Validity, test codes (argmax decode)", f"{100 * m.get('validity_test_codes', 0):.1f} %")]
        c = self.sidecar.get("metrics_test_constrained")
        if isinstance(c, dict) and "exact_constrained" in c:
            out += [(f"Exact reconstruction (constrained decode, {c.get('n', '?')} test)",
                     f"{100 * c['exact_constrained']:.1f} %"),
                    ("Validity (constrained decode)", f"{100 * c.get('validity_constrained', 0):.1f} %")]
        return out + [("Validity, prior samples", f"{100 * m.get('validity_prior', 0):.1f} %"),
                      ("Atom-type accuracy", f"{100 * m.get('atom_type_acc', 0):.1f} %")]

    def card_text(self) -> str:
        """Code shape and metric definitions."""
        m, cfg = self.sidecar.get("metrics_test", {}), self.sidecar.get("model_config", {})
        return (f"Latent code per molecule: **{cfg.get('n_nodes')} × {cfg.get('latent_dim')}** "
                f"(node slots × channels). {qm9.VALIDITY_DEFINITION}. Test split: "
                f"{m.get('n_molecules', '?')} molecules; {m.get('n_prior_samples', '?')} prior samples z ~ N(0, I).")


GRAPH_VAE_QM9 = ModelSpec(
    id="graph_vae_qm9", label="Graph VAE · QM9 molecules (S_n)", domain=QM9, load=GraphVAEModel,
    evaluation=EvaluationPlan("properties", "qm9", in_report=True),
    train_hint="python -m backend train qm9 --name graph_vae_qm9")
# The first shipped graph VAE (4 epochs, equivariant decoder only), kept for comparison where its files are.
GRAPH_VAE_QM9_V1 = ModelSpec(
    id="graph_vae_qm9_v1", label="Graph VAE v1 · QM9 (first 4-epoch model; not in the Results)", domain=QM9,
    load=GraphVAEModel, train_hint="python -m backend train qm9 --name graph_vae_qm9_v1", optional=True)


# ------------------------------------------------------------------ the registry's entry
class QM9GraphVAEEntry(ModelEntry):
    """Entry of a molecules-family spec (default: the graph VAE), with the old helpers kept."""

    EQUIVARIANCE_SAMPLE, EQUIVARIANCE_TOL = 256, 1e-4

    def __init__(self, model_id: str | None = None, label: str | None = None, *, spec: ModelSpec | None = None):
        spec = spec or spec_like(GRAPH_VAE_QM9, model_id, label)
        super().__init__(model_id, label, spec=spec)

    def _encode_arrays(self, types, bonds, tiebreak) -> np.ndarray:
        """Codes (B, n, d) of graphs given as arrays."""
        return self.latent().encode_arrays(types, bonds, tiebreak)

    def encode_graphs(self, graphs: list[qm9.MolGraph]) -> LatentCodes:
        """Codes (B, n, d) with node masks of :class:`~backend.data.qm9.MolGraph` s."""
        return self.encode_inputs(GraphBatch.from_graphs(graphs))

    def encode_smiles(self, smiles: str, perm: np.ndarray | None = None) -> LatentCodes:
        """Code (1, n, d) of a SMILES, its atoms relabelled by ``perm`` (n,) first if given.

        Raises the ``MoleculeError`` subclasses of :mod:`backend.data.qm9` for bad input.
        """
        graph = GraphBatch.from_graphs([qm9.smiles_to_graph(smiles, self.latent_action.n)])
        return self.encode_inputs(graph if perm is None else self.input_action.act(graph, perm))
