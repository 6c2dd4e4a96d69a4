"""What the pages, views and ``evaluate`` use of one registered model: :class:`ModelEntry`.

A :class:`ModelEntry` wraps a frozen :class:`~backend.families.base.ModelSpec` and loads it
lazily: files (weights, JSON sidecar, the weights hash that keys every latent cache), the
:class:`~backend.families.base.LatentModel`, the data set, and what the pages show (projections,
colour options, captions, renders, typed input, orbits). :mod:`backend.registry` keeps the entries
by id; each family adds its older helper methods in a subclass beside its domain
(:mod:`backend.families.molecules`, :mod:`backend.families.images`).

Environment variable: ``ELX_WEIGHTS_DIR``, a folder with ``<model id>.pt`` + ``.json`` (default
``models/weights``; a spec with its own ``weights_dir`` keeps it).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import threading
from pathlib import Path
from typing import Callable

import numpy as np

from backend.data import qm9
from backend.families.base import ColorOption, ModelSpec
from backend.groups import CyclicShiftAction, LatentCodes, TrivialAction
from backend.latents import EncodedDataset
from backend.projections import ProjectionSpec, projections_for

DEFAULT_WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "models" / "weights"


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
                 "validity_note", "overview_note", "text_errors", "presentation_label", "order_labels", "order_help")


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
    overview_note: str | None = None
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
        from backend.provenance import file_sha256

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


def spec_like(spec: ModelSpec, model_id: str | None, label: str | None) -> ModelSpec:
    """``spec`` with another id / label (the old entry constructors took both)."""
    if (model_id or spec.id) == spec.id and (label or spec.label) == spec.label:
        return spec
    return dataclasses.replace(spec, id=model_id or spec.id, label=label or spec.label)
