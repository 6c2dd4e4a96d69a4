"""Run e2cnn 0.2.3 under NumPy 2.x: one small, idempotent compatibility shim.

e2cnn 0.2.3 (the last release, 2021) was written against NumPy 1.x. Building ``C_N``
(``gspaces.Rot2dOnR2``) convolutions with regular fields happens to work under NumPy 2,
but anything that involves reflections or 2-dimensional irreps with a flip
(``gspaces.FlipRot2dOnR2`` = ``D_N``, ``O(2)``, ``SO(2)`` bases) fails while the
convolution is being *built*. ``install()`` repairs exactly the three NumPy-2
incompatibilities found by grepping the installed package (``e2cnn/**/*.py``), and
nothing else. No file in ``site-packages`` is modified; everything is a run-time patch
of e2cnn's own objects, so NumPy's namespace and ``numpy.ndarray`` stay untouched for
every other library.

What is patched, and why
------------------------
1. ``ndarray.tostring()`` (removed in NumPy 2.0; it was an alias of ``tobytes()``).
   It is called only in the ``__hash__`` methods of four kernel-basis classes in
   ``e2cnn/kernels/irreps_basis.py``::

       R2FlipsSolution.__hash__                     (line 183)
       R2ContinuousRotationsSolution.__hash__       (line 634)
       R2FlipsDiscreteRotationsSolution.__hash__    (line 892)
       R2FlipsContinuousRotationsSolution.__hash__  (line 1074)

   e2cnn hashes bases to key its cache of sampled filters
   (``basisexpansion_singleblock.block_basisexpansion``), so ``R2Conv`` on a ``D_N``
   gspace raises ``AttributeError: 'numpy.ndarray' object has no attribute
   'tostring'``. The four methods are replaced by copies that call ``tobytes()``,
   which returns the identical bytes, so the hash values are the same as under NumPy 1.

2. ``np.array(x, copy=False)`` (NumPy 2.0 changed ``copy=False`` from "copy only if
   needed" to "never copy", raising ``ValueError: Unable to avoid copy`` for Python
   scalars). Used in ``e2cnn/kernels/utils.py`` (``psi``, ``chi``, ``psichi``, lines
   61-107), which the ``D_N`` / ``O(2)`` bases call with a Python float
   ``gamma = 0.`` (e.g. 2-d irrep to 2-d irrep blocks of a regular ``D_N`` field).
3. ``np.float`` (alias of the builtin ``float``, removed in NumPy 1.24). Used once in
   ``e2cnn/group/groups/o2group.py`` line 448, ``O2._induced_from_irrep`` (the
   representation of ``O(2)`` induced from ``SO(2)``).

   Items 2 and 3 are fixed by rebinding the module-global name ``np`` *inside those
   two e2cnn modules only* to :class:`_NumPy1Namespace`, a thin module object that
   forwards every attribute to the real NumPy except ``array`` (which maps
   ``copy=False`` to ``numpy.asarray``, the exact NumPy 1.x meaning) and ``float``
   (the builtin ``float``, the exact meaning of the old alias). Nothing outside e2cnn
   sees it.

Optionally (on by default) ``install()`` also adds one warnings filter for e2cnn's
``UserWarning: indexing with dtype torch.uint8 is now deprecated`` (e2cnn indexes a
mask with a ``uint8`` tensor in ``nn/modules/r2_conv/basisexpansion_singleblock.py``
line 80 for PyTorch < 1.2 compatibility; harmless). The filter matches that message
*and* that module only, so the same warning from any other code is still shown.

Usage
-----
Call ``install()`` once before building e2cnn modules (it imports e2cnn itself)::

    from models.e2cnn_compat import install
    install()
    from e2cnn import gspaces, nn
"""

from __future__ import annotations

import types
import warnings

import numpy as _numpy

__all__ = ["install", "is_installed", "UINT8_WARNING_MESSAGE", "UINT8_WARNING_MODULE"]

#: Regex for the harmless PyTorch deprecation warning that e2cnn triggers when it builds
#: a convolution (matched against the start of the message).
UINT8_WARNING_MESSAGE = r"indexing with dtype torch\.uint8 is now deprecated"
#: The only module whose uint8 warning is silenced.
UINT8_WARNING_MODULE = r"e2cnn\.nn\.modules\.r2_conv\.basisexpansion_singleblock"

_PATCH_MARK = "_latent_inspector_compat"

# (class name in e2cnn.kernels.irreps_basis, whether ``gamma`` is hashed via tostring too);
# mirrors the original bodies exactly, with ``tostring`` -> ``tobytes``.
_HASHED_BASES = {
    "R2FlipsSolution": False,
    "R2ContinuousRotationsSolution": True,
    "R2FlipsDiscreteRotationsSolution": False,
    "R2FlipsContinuousRotationsSolution": False,
}


class _NumPy1Namespace(types.ModuleType):
    """NumPy seen through NumPy-1.x eyes, for two e2cnn modules only.

    Every attribute is forwarded to the real :mod:`numpy`, except

    - ``array(obj, ..., copy=False)`` -> ``numpy.asarray(obj, ...)`` (NumPy 1.x
      semantics: copy only if needed); any other ``copy`` value is passed through;
    - ``float`` -> the builtin :class:`float` (the alias NumPy 1.24 removed).
    """

    float = float

    def __init__(self) -> None:
        super().__init__("numpy", "NumPy with NumPy-1.x `array(copy=False)` and `np.float` (e2cnn shim)")
        setattr(self, _PATCH_MARK, True)

    def __getattr__(self, name):
        # Only called for names not found on the instance/class: forward to NumPy.
        return getattr(_numpy, name)

    @staticmethod
    def array(obj, *args, copy=True, **kwargs):
        if copy is False:
            return _numpy.asarray(obj, *args, **kwargs)
        return _numpy.array(obj, *args, copy=copy, **kwargs)


def _make_hash(hash_gamma_bytes: bool):
    if hash_gamma_bytes:
        def __hash__(self):
            return (hash(self.in_irrep) + hash(self.out_irrep)
                    + hash(self.mu.tobytes()) + hash(self.gamma.tobytes()))
    else:
        def __hash__(self):
            return hash(self.in_irrep) + hash(self.out_irrep) + hash(self.mu.tobytes()) + hash(self.gamma)
    setattr(__hash__, _PATCH_MARK, True)
    return __hash__


def is_installed() -> bool:
    """Whether the e2cnn patches (not the warnings filter) are in place.

    Returns
    -------
    bool
        ``True`` when all four ``__hash__`` methods and both ``np`` rebinds are active.
    """
    import e2cnn.group.groups.o2group as o2group
    import e2cnn.kernels.irreps_basis as irreps_basis
    import e2cnn.kernels.utils as kernel_utils

    hashes = all(getattr(getattr(irreps_basis, name).__hash__, _PATCH_MARK, False) for name in _HASHED_BASES)
    return (hashes and getattr(kernel_utils.np, _PATCH_MARK, False)
            and getattr(o2group.np, _PATCH_MARK, False))


def install(silence_uint8_warning: bool = True) -> None:
    """Patch e2cnn 0.2.3 so that it builds ``D_N`` / ``O(2)`` / ``SO(2)`` modules under NumPy 2.

    Idempotent: a second call patches nothing again; the warnings filter is never
    duplicated, but each call (re)inserts it at the front of ``warnings.filters`` (so it
    also survives a ``warnings.catch_warnings`` block or pytest's per-test reset when
    called again).
    See the module docstring for the exact list of patched call sites.

    Parameters
    ----------
    silence_uint8_warning : bool, default True
        Also ignore e2cnn's ``torch.uint8`` indexing ``UserWarning`` (that message, from
        that e2cnn module only).

    Raises
    ------
    ImportError
        If e2cnn is not installed.
    RuntimeError
        If the installed e2cnn does not have the expected classes (a different version).
    """
    import e2cnn.group.groups.o2group as o2group
    import e2cnn.kernels.irreps_basis as irreps_basis
    import e2cnn.kernels.utils as kernel_utils

    for name, hash_gamma_bytes in _HASHED_BASES.items():
        cls = getattr(irreps_basis, name, None)
        if cls is None:
            raise RuntimeError(f"e2cnn.kernels.irreps_basis has no class {name}; "
                               f"this shim targets e2cnn 0.2.3")
        if not getattr(cls.__hash__, _PATCH_MARK, False):
            cls.__hash__ = _make_hash(hash_gamma_bytes)

    for module in (kernel_utils, o2group):
        if getattr(module, "np", None) is not _numpy and not getattr(module.np, _PATCH_MARK, False):
            raise RuntimeError(f"{module.__name__}.np is not numpy; this shim targets e2cnn 0.2.3")
        if not getattr(module.np, _PATCH_MARK, False):
            module.np = _NumPy1Namespace()

    if silence_uint8_warning:
        # ``filterwarnings`` (append=False) drops an identical existing entry before
        # inserting at the front, so repeated calls never duplicate the filter.
        warnings.filterwarnings("ignore", message=UINT8_WARNING_MESSAGE, category=UserWarning,
                                module=UINT8_WARNING_MODULE)
