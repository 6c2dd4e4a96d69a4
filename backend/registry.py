"""One entry per model: loader, data set, encoder, decoder, group actions, renderer, projections.

Pages talk to models only through :func:`get`. A new model family needs one
file in ``models/`` and one entry here, nothing in ``pages/``.

Environment variables (for tests and for users with their own weights):

* ``ELX_WEIGHTS_DIR``: folder with ``<model id>.pt`` + ``.json`` (default ``models/weights``).
* ``ELX_QM9_SUBSET``: use a seeded random subset of this many QM9 molecules
  (default: all 130,831). Meant for quick tests, not for analysis.
"""

from __future__ import annotations

import functools
import json
import os
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


class UnknownModelError(KeyError):
    """No model with that id in the registry."""


class WeightsNotFoundError(FileNotFoundError):
    """The model's weights or sidecar are missing."""


def weights_dir() -> Path:
    """``$ELX_WEIGHTS_DIR`` or ``models/weights``."""
    return Path(os.environ.get("ELX_WEIGHTS_DIR") or DEFAULT_WEIGHTS_DIR)


@dataclass(frozen=True)
class ColorOption:
    """A column the maps can be coloured by, with its display unit and scale."""

    key: str
    label: str
    unit: str
    categorical: bool = False
    scale: float = 1.0  # display value = stored value * scale (Hartree -> eV)


class QM9GraphVAEEntry:
    """The permutation-equivariant graph VAE on QM9 (``models/graph_vae.py``)."""

    family = "molecules"
    dataset_name = "QM9"
    input_action_description = "S_n: relabelling the heavy atoms (node order)"

    def __init__(self, model_id: str = "graph_vae_qm9",
                 label: str = "Graph VAE · QM9 molecules (S_n)"):
        self.id = model_id
        self.label = label

    def reset(self) -> None:
        """Forget cached sidecar, model and data (after ``$ELX_*`` variables change)."""
        for name in ("sidecar", "weights_sha256"):
            self.__dict__.pop(name, None)
        type(self).model.cache_clear()
        type(self).dataset.cache_clear()

    # -- files
    @property
    def weights_path(self) -> Path:
        """``<weights dir>/<id>.pt`` (a state_dict)."""
        return weights_dir() / f"{self.id}.pt"

    @property
    def sidecar_path(self) -> Path:
        """``<weights dir>/<id>.json`` (training command, seed, data, commit, metrics)."""
        return weights_dir() / f"{self.id}.json"

    @functools.cached_property
    def sidecar(self) -> dict:
        """The JSON sidecar written by the training command.

        Raises
        ------
        WeightsNotFoundError
            If weights or sidecar are missing.
        """
        if not self.weights_path.exists() or not self.sidecar_path.exists():
            raise WeightsNotFoundError(
                f"no weights for {self.id} in {weights_dir()}: train them with "
                f"`python -m backend train qm9 --name {self.id}`")
        return json.loads(self.sidecar_path.read_text())

    @functools.cached_property
    def weights_sha256(self) -> str:
        """Hex SHA-256 of the weights file; part of every latent cache key."""
        from backend.training import file_sha256

        return file_sha256(self.weights_path)

    # -- model and data
    @functools.lru_cache(maxsize=1)
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

    @functools.lru_cache(maxsize=1)
    def dataset(self) -> qm9.QM9Graphs:
        """Featurized QM9 with the sidecar's split seed (optionally ``$ELX_QM9_SUBSET``)."""
        split_seed = self.sidecar.get("data", {}).get("split_seed", 0)
        graphs = qm9.load_qm9_graphs(split_seed=split_seed, progress=False)
        subset = int(os.environ.get("ELX_QM9_SUBSET") or 0)
        if 0 < subset < len(graphs.table):
            rows = np.sort(np.random.default_rng(0).choice(len(graphs.table), subset, replace=False))
            graphs = graphs.subset(rows)
        return graphs

    def projections(self) -> list[ProjectionSpec]:
        """Projections defined for this model's latent action."""
        return projections_for(self.latent_action)

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

        return load_or_encode(self.encoded_cache_path(node_order_seed), graphs.table,
                              self.latent_action, compute, node_order_seed, mask=graphs.types > 0)

    # -- decoding and drawing
    def decode(self, codes: LatentCodes) -> list[qm9.DecodedMolecule]:
        """Deterministic decode of each code to a molecule (with validity)."""
        with torch.no_grad():
            types, bonds = self.model().decode(torch.from_numpy(np.array(codes.values)))
        return [qm9.graph_to_molecule(t, b) for t, b in zip(types.numpy(), bonds.numpy())]

    def render(self, item: qm9.DecodedMolecule | str, size: tuple[int, int] = (260, 200)) -> str:
        """SVG of a decoded molecule or a SMILES; invalid decodes carry a red INVALID mark."""
        from backend.plots import molecule_svg

        if isinstance(item, str):
            return molecule_svg(qm9.parse_smiles(item), size=size)
        return molecule_svg(item.mol, size=size, valid=item.valid, reason=item.reason)

    def describe_row(self, row: int) -> dict:
        """Identifiers of one data set row for hover and captions."""
        t = self.dataset().table
        return {"qm9_index": int(t["qm9_index"].iat[row]), "smiles": str(t["smiles"].iat[row])}


MODELS: dict[str, QM9GraphVAEEntry] = {e.id: e for e in (QM9GraphVAEEntry(),)}


def available() -> list[str]:
    """Ids of registered models, in display order."""
    return list(MODELS)


def get(model_id: str) -> QM9GraphVAEEntry:
    """The registry entry of ``model_id``.

    Raises
    ------
    UnknownModelError
        If no such model is registered.
    """
    try:
        return MODELS[model_id]
    except KeyError:
        raise UnknownModelError(f"unknown model {model_id!r}; available: {', '.join(MODELS)}") from None
