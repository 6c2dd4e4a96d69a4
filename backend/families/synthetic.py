"""Seeded synthetic S_n codes without a model, registered for maps of millions of codes.

``$ELX_SYNTHETIC_CODES`` (a number of codes) makes :mod:`backend.registry` register a
:class:`SyntheticCodesEntry`; the codes come from :func:`backend.density.synthetic_codes`.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np

from backend.data import qm9
from backend.entry import ModelEntry, _locked_cache
from backend.families.base import ColorOption
from backend.groups import LatentCodes, PermutationAction
from backend.latents import EncodedDataset


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
        """What the overview page shows as the model card."""
        return {"model_config": {"n": 9, "d": 1}, "synthetic_codes": self.m,
                "generator": "backend.density.synthetic_codes (6 clusters, noise 0.35)"}

    def card_text(self) -> str:
        """Markdown: what the codes are."""
        return (f"**{self.m:,} synthetic codes** of shape 9 × 1 drawn around 6 seeded centres (no model, "
                "no decoder); S_n permutes the 9 slots. Meant for maps of millions of codes.")

    @_locked_cache(maxsize=1)
    def model(self):
        """No model."""
        return None

    @property
    def latent_action(self) -> PermutationAction:
        """S_n on codes (9, 1)."""
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
        """Cluster (category) and norm."""
        return [ColorOption("cluster", "cluster the code was drawn around", "id", categorical=True),
                ColorOption("radius", "norm of the code", "latent units")]

    def encoded_cache_path(self, node_order_seed: int) -> Path:
        """A small marker written once the codes of this seed were generated (the codes stay in memory)."""
        return qm9.cache_dir() / f"synthetic_{self.m}_seed{node_order_seed}.json"

    def encode_dataset(self, node_order_seed: int = 0, progress=None, on_wait=None) -> EncodedDataset:
        """Codes of both slot orders; ``progress(fraction, message)`` during the first generation
        (``on_wait`` is accepted for the common signature; nothing here waits on a file)."""
        codes, table = self._generate(node_order_seed, progress if callable(progress) else None)
        path = self.encoded_cache_path(node_order_seed)
        if not path.exists():
            path.write_text(json.dumps({"codes": self.m, "seed": node_order_seed}))
        action = self.latent_action
        return EncodedDataset(table, LatentCodes(codes.stored, action),
                              LatentCodes(codes.random, action), codes.perms, node_order_seed, path)

    def describe_row(self, row: int) -> dict:
        """``title``: code id and cluster."""
        t = self.dataset().table.iloc[row]
        return {"title": f"code {int(t['code_id'])} (cluster {int(t['cluster'])})"}

    def render_row(self, row: int, size: tuple[int, int] = (260, 60)) -> str:
        """The row's title as SVG text."""
        w, h = size
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}"><text x="4" y="{h // 2}" '
                f'font-family="sans-serif" font-size="13">{self.describe_row(row)["title"]}</text></svg>')
