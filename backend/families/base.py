"""The contract every model family implements, documented once.

A *family* is a :class:`Domain` (a data set and how to show it) with the :class:`LatentModel` s
trained on it. The dashboard, ``evaluate``, ``report`` and the command line reach a model only
through a frozen :class:`ModelSpec`, registered with :func:`backend.registry.register` or through
the ``latent_explorer.models`` entry-point group (:mod:`backend.registry`). Group elements that act
on *inputs* are typed (:class:`Permutations`, :class:`Angles`): never a bare array that means slot
orders for molecules and rotation steps for images.

Sources: the in/out-type declaration of e2cnn (Weiler & Cesa, *General E(2)-equivariant steerable
CNNs*, NeurIPS 2019, ``e2cnn.nn.EquivariantModule``); pure, batched input transforms as in PyTorch
Geometric's ``BaseTransform``; latent group actions and invariant projections as in Hansen,
Calissano & Feragen, *Interpreting Equivariant Representations*, ICML 2024, Sec. 2-3.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Protocol

import numpy as np


class GroupElements:
    """A batch of group elements acting on inputs: ``values`` of shape (G, ...), read-only.

    Subclasses say what the numbers are (:class:`Permutations`, :class:`Angles`). Indexing keeps
    the batch axis (``elements[0]`` is a batch of one); ``key()`` is a hashable tuple for caches.

    Parameters
    ----------
    values : array-like of shape (G, ...), or one element (the batch axis is added).

    Raises
    ------
    ValueError
        If the array has the wrong number of dimensions or holds invalid elements.
    """

    values: np.ndarray

    def __init__(self, values):
        arr = np.array(values, dtype=self._dtype)
        arr = arr.reshape((1, *arr.shape)) if arr.ndim == self._ndim - 1 else arr
        if arr.ndim != self._ndim:
            raise ValueError(f"{type(self).__name__} need an array of {self._ndim} dimensions, got {arr.shape}")
        self._check(arr)
        arr.flags.writeable = False
        object.__setattr__(self, "values", arr)

    _dtype: ClassVar[type] = np.float64
    _ndim: ClassVar[int] = 1

    def _check(self, arr: np.ndarray) -> None:
        """Raise ValueError when ``arr`` holds no valid elements (subclasses)."""

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, idx) -> "GroupElements":
        return type(self)(self.values[[idx] if isinstance(idx, (int, np.integer)) else idx])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.values.tolist()!r})"

    def key(self) -> tuple:
        """The elements as a hashable tuple (for ``st.cache_data`` keys); ``type(e)(e.key())`` rebuilds them."""
        return tuple(map(tuple, self.values.tolist())) if self.values.ndim == 2 else tuple(self.values.tolist())

    def n_distinct(self) -> int:
        """How many different group elements the batch holds (equal rows counted once)."""
        rows = self.values.reshape(len(self.values), -1)
        return int(len(np.unique(rows, axis=0))) if len(rows) else 0

    def concat(self, other: "GroupElements") -> "GroupElements":
        """These elements followed by ``other`` (same type), as one batch.

        Raises
        ------
        TypeError
            If ``other`` is another kind of element.
        """
        if type(other) is not type(self):
            raise TypeError(f"cannot join {type(self).__name__} with {type(other).__name__}")
        return type(self)(np.concatenate([self.values, other.values]))


class Permutations(GroupElements):
    """Relabellings of ``n`` node slots, ``values`` of shape (G, n), int64.

    Slot ``i`` of a relabelled input takes the old slot ``p[i]`` (the convention of
    :class:`backend.groups.PermutationAction`, so an exactly S_n-equivariant encoder gives
    ``E(p·x) = p·E(x)`` with the same ``p``).

    Raises
    ------
    ValueError
        If a row is not a permutation of ``0 .. n-1``.
    """

    _dtype, _ndim = np.int64, 2

    def _check(self, arr: np.ndarray) -> None:
        if arr.size and not np.array_equal(np.sort(arr, axis=1), np.broadcast_to(np.arange(arr.shape[1]), arr.shape)):
            raise ValueError("each relabelling must list every slot 0..n-1 once")


class Angles(GroupElements):
    """Counter-clockwise rotations of an image, ``values`` = radians of shape (G,), float64.

    Radians everywhere inside; degrees only in widgets (:meth:`from_degrees`, :attr:`degrees`).

    Raises
    ------
    ValueError
        If an angle is NaN or infinite.
    """

    def _check(self, arr: np.ndarray) -> None:
        if not np.isfinite(arr).all():
            raise ValueError("an angle must be a finite number")

    @classmethod
    def from_degrees(cls, degrees) -> "Angles":
        """Angles given in degrees (a widget's value), stored in radians."""
        return cls(np.radians(np.asarray(degrees, dtype=np.float64)))

    @property
    def radians(self) -> np.ndarray:
        """(G,) float64, counter-clockwise."""
        return self.values

    @property
    def degrees(self) -> np.ndarray:
        """(G,) float64, for labels and widgets only."""
        return np.degrees(self.values)

    def n_distinct(self, atol: float = 1e-9) -> int:
        """How many different rotations the batch holds: angles equal modulo 2π within ``atol``
        radians are one element (e.g. 45° from a slider and 45° = 2π·1/8 of an orbit)."""
        a = np.sort(np.mod(self.values, 2 * np.pi))
        if not len(a):
            return 0
        gaps = np.diff(np.concatenate([a, [a[0] + 2 * np.pi]]))  # last gap wraps around the circle
        return max(1, int((gaps > atol).sum()))


class InputAction(ABC):
    """How a group acts on a model's *inputs* (e2cnn's ``in_type``; the latent side is ``latent_action``).

    ``act`` is pure and batched: input ``b`` is transformed by element ``b``; one input with ``G``
    elements gives ``G`` transformed copies, one element is applied to every input.
    """

    #: control drawn by the Orbits page: ``"angle"`` (degree slider) or ``"relabelling"`` (random / typed)
    widget: ClassVar[str]
    #: type of the elements this action takes and returns
    element_type: ClassVar[type[GroupElements]]
    #: one sentence for the model card and the Orbits page
    description: str = ""

    @abstractmethod
    def random_elements(self, count: int, seed: int) -> GroupElements:
        """``count`` seeded elements: the re-presentation of every input (sidebar "presentation seed")."""

    @abstractmethod
    def orbit_elements(self, count: int, seed: int = 0) -> GroupElements:
        """``count`` elements traced on the Orbits page, the identity first."""

    @abstractmethod
    def act(self, inputs, elements: GroupElements):
        """The transformed inputs (new objects; ``inputs`` is not modified)."""

    @abstractmethod
    def parse(self, text: str) -> GroupElements:
        """One element typed by a user. Raises ValueError with a message saying what is wrong."""

    @abstractmethod
    def label(self, element: GroupElements) -> str:
        """Short text for one element, e.g. ``"rotate 45°"``."""

    def example_text(self) -> str:
        """A text :meth:`parse` accepts, shown in an empty text box."""
        return self.label(self.orbit_elements(2)[1])

    def as_elements(self, value) -> GroupElements:
        """``value`` if already typed, else an array in this action's unit wrapped in :attr:`element_type`."""
        return value if isinstance(value, self.element_type) else self.element_type(value)

    def to_stored(self, elements: GroupElements) -> np.ndarray:
        """The integer array kept in the codes cache (``perms``) for these elements."""
        return np.asarray(elements.values)

    def from_stored(self, stored: np.ndarray) -> GroupElements:
        """Inverse of :meth:`to_stored`."""
        return self.element_type(stored)


@dataclass(frozen=True)
class ColorOption:
    """A table column the maps can be coloured by: display value = stored value * ``scale`` in ``unit``."""

    key: str
    label: str
    unit: str
    categorical: bool = False
    scale: float = 1.0  # e.g. Hartree -> eV


class Decoded(Protocol):
    """What a decoder returns per code: ``valid`` (None where validity means nothing, e.g. images)
    and a one-line ``caption``."""

    valid: bool | None
    caption: str


class Domain(ABC):
    """A data set and how to show it. ``data`` below is what :meth:`load` returns (it has a
    ``table``: one row per input, row-aligned with the codes)."""

    family: ClassVar[str]  #: e.g. ``"molecules"``; pages name the domain, never branch on it
    name: ClassVar[str]  #: e.g. ``"QM9"``
    item_noun: ClassVar[str] = "sample"
    id_col: ClassVar[str] = "index"
    hover_label_col: ClassVar[str] = "label"
    search_label: ClassVar[str | None] = None  #: what a user can type to pick an input (None: nothing)
    search_defaults: ClassVar[tuple[str, str]] = ("", "")
    validity_note: ClassVar[str | None] = None
    overview_note: ClassVar[str | None] = None  #: markdown the overview page shows under the model card
    text_errors: ClassVar[tuple[type[Exception], ...]] = (ValueError,)  #: what :meth:`resolve` raises
    presentation_label: ClassVar[str] = "Presentation of the inputs"
    order_labels: ClassVar[dict[str, str]] = {"random": "random", "stored": "stored"}
    order_help: ClassVar[str] = ""

    @abstractmethod
    def load(self, sidecar: dict) -> Any:
        """The data set for a model with this sidecar (its split seed, source)."""

    def loading_message(self) -> str:
        """What the app says while :meth:`load` runs the first time."""
        return f"Loading {self.name}..."

    @abstractmethod
    def inputs(self, data, rows=None):
        """The model inputs of ``rows`` (default all), a batch that :class:`InputAction` acts on."""

    def mask(self, data) -> np.ndarray | None:
        """Real node slots (M, n) of the stored inputs, or None when codes have no padding."""
        return None

    @abstractmethod
    def color_options(self) -> list[ColorOption]:
        """Columns of ``data.table`` the maps can be coloured by, with units."""

    @abstractmethod
    def describe_row(self, data, row: int) -> dict:
        """Identifiers of one row; ``"title"`` is a short caption."""

    @abstractmethod
    def render(self, item, size: tuple[int, int]) -> str:
        """SVG of an input batch of one, a decoded item, or typed text."""

    def render_row(self, data, row: int, size: tuple[int, int] | None = None) -> str:
        """SVG of the stored input at ``row`` (default: :meth:`render` of its input, at its default size)."""
        item = self.inputs(data, [row])
        return self.render(item) if size is None else self.render(item, size)

    @abstractmethod
    def resolve(self, data, text: str) -> tuple[int | None, Any]:
        """Typed text -> ``(row, None)`` for an input of the data set, ``(None, inputs)`` for a new one.
        Raises one of :attr:`text_errors` with a message."""

    @abstractmethod
    def cache_tag(self, data) -> str:
        """Short digest of the rows, part of the codes' cache file name."""

    def presentation_columns(self, table, elements: GroupElements):
        """``table`` with columns describing the re-presented inputs (default: unchanged)."""
        return table

    def path_summary(self, decoded: list) -> str:
        """One line about a decoded path."""
        return f"{len(decoded)} steps"


class LatentModel(ABC):
    """A trained encoder (and optional decoder) with its declared actions.

    Construction (``ModelSpec.load``) reads the sidecar only; :attr:`module` loads the weights on
    first use, once, even under concurrent callers.
    """

    latent_action: Any  #: a :class:`backend.groups.GroupAction` on codes
    input_action: InputAction
    has_decoder: ClassVar[bool] = True
    constrained_decode_label: ClassVar[str | None] = None  #: a second, valid-only decode (None: none)
    encode_batch_size: ClassVar[int] = 128

    def build_module(self):
        """The nn.Module in eval mode (subclasses; called once by :attr:`module`)."""
        return None

    @property
    def module(self):
        """The loaded nn.Module (None for models without one)."""
        lock = self.__dict__.setdefault("_module_lock", threading.Lock())
        with lock:
            if "_module" not in self.__dict__:
                self.__dict__["_module"] = self.build_module()
        return self.__dict__["_module"]

    @abstractmethod
    def encode(self, inputs):
        """``LatentCodes`` (B, *latent_action.code_shape) of a batch of inputs."""

    def decode(self, codes) -> list[Decoded]:
        """Decoded items of codes (B, ...). Raises NotImplementedError without a decoder."""
        raise NotImplementedError(f"{type(self).__name__} has no decoder")

    def decode_constrained(self, codes) -> list[Decoded] | None:
        """A decode that only returns valid outputs, shown next to :meth:`decode` (None: none)."""
        return None

    def latent_elements(self, elements: GroupElements) -> np.ndarray | None:
        """Latent elements ``h`` with ``E(g·x) = h·E(x)`` exactly (then cached codes are reused for
        a new presentation seed after a check); None when not exact."""
        return None

    def headline_metrics(self) -> list[tuple[str, str]]:
        """(label, value) pairs for the overview page."""
        return []

    def card_text(self) -> str:
        """Markdown: the code's shape and what the metrics mean."""
        return ""


@dataclass(frozen=True)
class EvaluationPlan:
    """How ``python -m backend evaluate`` treats a model, read by evaluate, report and the CLI.

    ``procedure`` names a procedure of :data:`backend.evaluate.PROCEDURES` (which fixes task,
    targets and path statistics: ``"properties"`` regression on the domain's properties with
    molecule path statistics, ``"classes"`` digit classification with the C_N ``k`` sweep,
    ``"classes_input_average"`` the same against input-side orbit averages) or is a callable
    ``(entry, cfg, progress) -> tables``. ``command`` is the name on the command line;
    ``in_report`` puts the model's claims in the README Results.
    """

    procedure: str | Callable
    command: str
    in_report: bool = False


@dataclass(frozen=True)
class ModelSpec:
    """One registered model: everything the app needs to find, load, show and evaluate it.

    ``load(weights_path, sidecar) -> LatentModel`` must be cheap (see :class:`LatentModel`).
    Weights are ``<weights_dir>/<id>.pt`` + ``.json``; ``weights_dir=None`` means
    ``$ELX_WEIGHTS_DIR`` or ``models/weights``. ``optional`` models are listed only where their
    files are.
    """

    id: str
    label: str
    domain: Domain
    load: Callable[[Path, dict], LatentModel]
    evaluation: EvaluationPlan | None = None
    train_hint: str = ""
    weights_dir: Path | None = None
    optional: bool = False
