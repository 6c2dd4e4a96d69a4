"""Codes-only mode: your own latent codes with a declared group action, no model needed.

A ``.npz`` or ``.npy`` file of latent codes, with the group action that acts on them,
is checked (:func:`parse_codes`), turned into a registry entry without a model
(:class:`CodesEntry`) and registered in :data:`backend.registry.MODELS`
(:func:`register`), so the dashboard's Latent maps page shows both maps and the
invariant projections of that action with their tags, and the Downstream page the
measured distortion and the probes for the given labels
(:mod:`backend.codes_analysis`). Pages that need inputs or a decoder (Interpolation, Orbits)
say that codes alone have neither.

Declared actions (:func:`parse_action`), as the file's ``action`` entry, a sidebar
choice, ``--action`` or ``$ELX_CODES_ACTION``:

* ``S_n`` (or ``S_9``): S_n permutes the rows of per-node codes of shape ``(M, n, d)``;
  an optional node mask ``(M, n)`` (bool, or 0/1) marks real nodes and is permuted
  with the codes (padded slots still take part in the group maths, so give them a
  constant value such as 0);
* ``C_N`` (or ``C_8``): C_N cyclically shifts the fibre of ``c`` regular fields,
  codes of shape ``(M, c, N)``;
* ``none``: no latent action, codes of shape ``(M, D)`` (the only projection is the
  identity).

A number in the action (``S_9``, ``C_8``) must match the codes' ``n`` / ``N``.

File layout: a ``.npy`` holds the codes array alone. A ``.npz`` holds ``codes``
(or exactly one array of rank >= 2), optionally ``mask``, ``action`` (a string)
and any number of 1-D arrays with one value per code (numbers or fixed-width
strings), used as labels and properties for colouring and probes; an ``id``
(or ``code_id``, ``row``, ``name``) column names each code. Labels can also come
as a CSV with a header line and one row per code, in the codes' order. Nothing is
unpickled (``numpy.load(..., allow_pickle=False)``): object arrays are refused.

Limits: a file (and the arrays of an ``.npz`` once unpacked) may hold at most
``$ELX_CODES_MAX_MB`` megabytes (default :data:`DEFAULT_MAX_MB`).

On the command line: ``streamlit run app.py -- --codes codes.npz [--action C_8]
[--labels labels.csv]``, or ``ELX_CODES=codes.npz [ELX_CODES_ACTION=C_8]
[ELX_CODES_LABELS=labels.csv] streamlit run app.py``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import threading
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from backend import registry
from backend.groups import CyclicShiftAction, LatentCodes, PermutationAction, TrivialAction
from backend.latents import EncodedDataset

#: default of ``$ELX_CODES_MAX_MB``: the largest codes file (and unpacked ``.npz``) accepted, in MB
DEFAULT_MAX_MB = 200
#: fewest codes a map can be drawn of
MIN_CODES = 2
#: a column with at most this many distinct values (integers, booleans, strings) is a category
MAX_CATEGORIES = 30
#: names of a column that identifies each code (the first present becomes ``code_id``)
ID_COLUMNS = ("id", "code_id", "row", "name")
#: most uploaded code sets kept in memory (oldest dropped first; command-line sets always stay)
MAX_UPLOADED = 4
_RESERVED = ("codes", "mask", "action")


class CodesFileError(ValueError):
    """A codes or labels file that cannot be used; the message says what is wrong and what to do."""


def max_bytes() -> int:
    """The size limit in bytes: ``$ELX_CODES_MAX_MB`` megabytes (default :data:`DEFAULT_MAX_MB`).

    Returns
    -------
    int
        Bytes (1 MB = 10**6 bytes).

    Raises
    ------
    CodesFileError
        If ``$ELX_CODES_MAX_MB`` is set but is not a positive number.
    """
    raw = os.environ.get("ELX_CODES_MAX_MB", "").strip()
    if not raw:
        return DEFAULT_MAX_MB * 10**6
    try:
        mb = float(raw)
    except ValueError:
        mb = float("nan")
    if not (np.isfinite(mb) and mb > 0):
        raise CodesFileError(f"ELX_CODES_MAX_MB must be a positive number of megabytes, got {raw!r}")
    return int(mb * 10**6)


def _mb(n: int) -> str:
    """A size for messages: ``"12.3 MB"``, ``"4.5 kB"`` or ``"800 bytes"``."""
    if n >= 10**6:
        return f"{n / 1e6:.1f} MB"
    return f"{n / 1e3:.1f} kB" if n >= 1000 else f"{n} bytes"


# ---------------------------------------------------------------------------- actions
_ACTION_RE = re.compile(r"^\s*([SC])\s*_?\s*\{?\s*(n|\d+)?\s*\}?\s*$", re.IGNORECASE)
ACTION_HELP = ("S_n (rows of (M, n, d) codes permuted), C_N (fibre of (M, c, N) codes shifted "
               "cyclically) or none ((M, D) codes); a number fixes n or N, e.g. S_9 or C_8")


def parse_action(text: str) -> tuple[str, int | None]:
    """A declared latent action as typed: ``"S_n"``, ``"S_9"``, ``"C_N"``, ``"C_8"`` or ``"none"``.

    Case and the underscore are optional (``"c8"``, ``"S_{9}"``); ``"trivial"`` and
    ``"identity"`` mean ``none``.

    Parameters
    ----------
    text : str
        The declaration.

    Returns
    -------
    kind : str
        ``"S"`` (permutations of rows), ``"C"`` (cyclic shifts of the fibre) or ``"none"``.
    size : int or None
        The declared ``n`` or ``N``; None when it is taken from the codes' shape.

    Raises
    ------
    CodesFileError
        For anything else, or a declared size below 2 (S_1 and C_1 act trivially:
        declare ``none``).
    """
    body = str(text).strip()
    if body.lower() in ("none", "trivial", "identity"):
        return "none", None
    match = _ACTION_RE.match(body)
    if not match:
        raise CodesFileError(f"unknown action {registry._quoted(text)}; declare {ACTION_HELP}")
    kind, size = match.group(1).upper(), match.group(2)
    if size is None or not size.isdigit():
        return kind, None
    if int(size) < 2:
        raise CodesFileError(f"{kind}_{int(size)} acts trivially; declare 'none' for codes without a "
                             "latent action")
    return kind, int(size)


def action_label(kind: str, size: int | None) -> str:
    """``"S_9"``, ``"C_8"``, ``"S_n"``, ``"C_N"`` or ``"none"`` for a parsed action."""
    if kind == "none":
        return "none"
    return f"{kind}_{size}" if size else ("S_n" if kind == "S" else "C_N")


# ---------------------------------------------------------------------------- parsing
@dataclass(frozen=True)
class UploadedCodes:
    """Checked codes with their action and one table row per code.

    Attributes
    ----------
    name : str
        File name the codes came from (shown in the UI).
    codes : LatentCodes
        Values ``(M, n, d)`` (S_n, with ``mask`` if given), ``(M, c, N)`` (C_N) or
        ``(M, D, 1)`` (none: :class:`~backend.groups.TrivialAction`), float32.
    table : DataFrame
        M rows: ``code_id`` (the file's id column or 0..M-1), the label columns in file
        order (npz columns, then CSV columns), and ``code_norm`` (Euclidean norm of each
        code, latent units).
    action : str
        The action with its size, e.g. ``"C_8"``, ``"S_9"`` or ``"none"``.
    sha256 : str
        Hex SHA-256 of the codes file and the declared action and labels file (the
        entry id is built from it).
    label_columns : tuple of str
        The label / property columns of ``table`` (without ``code_id`` and ``code_norm``).
    notes : tuple of str
        Things worth saying that are not errors (ignored arrays, renamed columns).
    """

    name: str
    codes: LatentCodes
    table: pd.DataFrame
    action: str
    sha256: str
    label_columns: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def __len__(self) -> int:
        """M, the number of codes."""
        return len(self.codes)


def _sniff(data: bytes) -> str:
    if data[:6] == b"\x93NUMPY":
        return "npy"
    if data[:4] == b"PK\x03\x04" or data[:4] == b"PK\x05\x06":
        return "npz"
    return "?"


def _pickle_refused(name: str, key: str | None) -> CodesFileError:
    where = f"array {key!r} of {name}" if key else name
    return CodesFileError(
        f"{where} holds Python objects (dtype=object), which only unpickling could load; refused "
        "(allow_pickle=False) because unpickling can run code. Save plain numeric arrays, and "
        "strings as fixed-width text, e.g. np.array(labels, dtype=str).")


def _load_arrays(data: bytes, name: str, limit: int) -> tuple[dict[str, np.ndarray], list[str]]:
    """Arrays of a .npy (key ``codes``) or .npz, read without pickle; sizes checked before loading."""
    if len(data) > limit:
        raise CodesFileError(f"{name} is {_mb(len(data))}, more than the limit of {_mb(limit)} "
                             "(set ELX_CODES_MAX_MB to raise it)")
    kind = _sniff(data)
    if kind == "?":
        raise CodesFileError(f"{name} is not a .npy or .npz file (it does not start like one); save "
                             "codes with numpy.save or numpy.savez")
    if kind == "npy":
        try:
            arr = np.load(io.BytesIO(data), allow_pickle=False)
        except ValueError as exc:
            if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
                raise _pickle_refused(name, None) from None
            raise CodesFileError(f"{name} cannot be read as .npy: {exc}") from None
        except Exception as exc:  # truncated or corrupt header
            raise CodesFileError(f"{name} cannot be read as .npy ({type(exc).__name__}: {exc})") from None
        return {"codes": arr}, []
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            unpacked = sum(info.file_size for info in zf.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CodesFileError(f"{name} cannot be read as .npz ({exc})") from None
    if unpacked > limit:
        raise CodesFileError(f"{name} holds {_mb(unpacked)} of arrays once unpacked, more than the limit of "
                             f"{_mb(limit)} (set ELX_CODES_MAX_MB to raise it)")
    out, notes = {}, []
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            for key in npz.files:
                try:
                    value = npz[key]
                except ValueError as exc:
                    if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
                        raise _pickle_refused(name, key) from None
                    raise CodesFileError(f"array {key!r} of {name} cannot be read: {exc}") from None
                if not isinstance(value, np.ndarray):
                    notes.append(f"ignored {key!r}: not a NumPy array")
                    continue
                out[key] = value
    except CodesFileError:
        raise
    except Exception as exc:  # corrupt member, bad CRC, truncated data
        raise CodesFileError(f"{name} cannot be read as .npz ({type(exc).__name__}: {exc})") from None
    return out, notes


def _pick_codes(arrays: dict[str, np.ndarray], name: str) -> tuple[str, list[str]]:
    if "codes" in arrays:
        return "codes", []
    candidates = [k for k, v in arrays.items() if v.ndim >= 2 and k not in _RESERVED]
    if len(candidates) == 1:
        return candidates[0], [f"took the codes from array {candidates[0]!r} (the only array of rank >= 2; "
                               "name it 'codes' to be explicit)"]
    listed = ", ".join(f"{k} {v.shape}" for k, v in arrays.items()) or "none"
    raise CodesFileError(f"{name} has no array called 'codes' (arrays: {listed}); save the codes as "
                         "np.savez(path, codes=z, ...)")


def _decode_text(value: np.ndarray) -> np.ndarray:
    if value.dtype.kind == "S":
        return np.char.decode(value, "utf-8", errors="replace")
    return value


def _declared(arrays: dict[str, np.ndarray], action: str | None, name: str) -> tuple[str, int | None]:
    in_file = None
    if "action" in arrays:
        raw = _decode_text(arrays["action"])
        if raw.dtype.kind != "U" or raw.size != 1:
            raise CodesFileError(f"the 'action' entry of {name} must be one string such as 'C_8', got "
                                 f"dtype {arrays['action'].dtype}, shape {arrays['action'].shape}")
        in_file = parse_action(str(raw.reshape(-1)[0]))
    given = parse_action(action) if action not in (None, "") else None
    if given is None and in_file is None:
        raise CodesFileError(f"no action declared for {name}: choose one ({ACTION_HELP}) or store it in the "
                             "file as np.savez(path, codes=z, action='C_8')")
    if given is not None and in_file is not None:
        same_kind = given[0] == in_file[0]
        sizes_agree = given[1] is None or in_file[1] is None or given[1] == in_file[1]
        if not (same_kind and sizes_agree):
            raise CodesFileError(f"{name} declares the action {action_label(*in_file)}, but "
                                 f"{action_label(*given)} was chosen; choose the file's action or fix the file")
        return given[0], given[1] or in_file[1]
    return given if given is not None else in_file


def _make_codes(z: np.ndarray, kind: str, size: int | None, mask, name: str) -> tuple[LatentCodes, list[str]]:
    notes = []
    shape = tuple(z.shape)
    if z.dtype.kind not in "biuf":
        raise CodesFileError(f"the codes of {name} are of dtype {z.dtype}; they must be real numbers "
                             "(float or integer)")
    want = {"S": ("(M, n, d)", 3), "C": ("(M, c, N)", 3), "none": ("(M, D)", 2)}[kind]
    label = action_label(kind, size)
    if z.ndim != want[1]:
        hint = {"S": " (one number per node: z[..., None] gives (M, n, 1))",
                "C": " (one field: z[:, None, :] gives (M, 1, N))",
                "none": " (flatten with z.reshape(len(z), -1))"}[kind]
        raise CodesFileError(f"codes of shape {shape} have rank {z.ndim}, but the action {label} needs codes "
                             f"of shape {want[0]}, rank {want[1]}{hint}")
    m = shape[0]
    if m < MIN_CODES:
        raise CodesFileError(f"{name} holds {m} code(s); a map needs at least {MIN_CODES}")
    if 0 in shape[1:]:
        raise CodesFileError(f"codes of shape {shape} have an empty axis")
    if kind == "S":
        n = shape[1]
        if size is not None and n != size:
            raise CodesFileError(f"the declared action S_{size} permutes {size} rows, but the codes have "
                                 f"n = {n} rows per code (shape {shape} = (M, n, d))")
        if n < 2:
            raise CodesFileError(f"codes of shape {shape} have n = 1 row per code, on which S_n acts "
                                 "trivially; declare 'none'")
        action = PermutationAction(n, shape[2])
    elif kind == "C":
        n_fibre = shape[2]
        if size is not None and n_fibre != size:
            raise CodesFileError(f"the declared action C_{size} shifts a fibre of length {size}, but the codes "
                                 f"have N = {n_fibre} (shape {shape} = (M, c, N))")
        if n_fibre < 2:
            raise CodesFileError(f"codes of shape {shape} have a fibre of length N = 1, on which C_N acts "
                                 "trivially; declare 'none'")
        action = CyclicShiftAction(shape[1], n_fibre)
    else:
        action = TrivialAction(shape[1])
        z = z[:, :, None]
    with np.errstate(over="ignore", invalid="ignore"):  # too large for float32 -> inf, reported below
        values = z.astype(np.float32)
    bad = ~np.isfinite(values.reshape(m, -1)).all(axis=1)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        big = " (some values are too large for float32)" if np.isfinite(z.reshape(m, -1)[first]).all() else ""
        raise CodesFileError(f"{int(bad.sum()):,} of {m:,} codes hold NaN or infinite values{big} (first: row "
                             f"{first}); remove or fix those rows")
    flat = values.reshape(m, -1)
    if not (flat != flat[:1]).any():
        raise CodesFileError(f"all {m:,} codes are identical (every code equals row 0, e.g. all zeros): there is "
                             "nothing to map, compare or project")
    if mask is not None:
        if kind != "S":
            raise CodesFileError(f"a node mask belongs to S_n codes (M, n, d); the action here is {label}. "
                                 "Remove 'mask' from the file")
        mask = np.asarray(mask)
        if mask.shape != shape[:2]:
            raise CodesFileError(f"the mask has shape {mask.shape}; it must be (M, n) = {shape[:2]}, one flag "
                                 "per node slot")
        if mask.dtype != bool:
            if mask.dtype.kind not in "iu" or not np.isin(mask, (0, 1)).all():
                raise CodesFileError(f"the mask must be bool (or 0/1 integers), got dtype {mask.dtype}")
            mask = mask.astype(bool)
        padded = values[~mask]
        if padded.size and np.ptp(padded) > 0:
            notes.append("padded slots (mask False) hold different values; they are permuted and projected "
                         "like real nodes, so give them one constant value (e.g. 0) for sorting to ignore them")
    return LatentCodes(values, action, mask), notes


def _column(value: np.ndarray) -> np.ndarray | pd.Series:
    value = _decode_text(value)
    if value.dtype.kind in "biuf" or value.dtype.kind == "U":
        return value
    raise CodesFileError(f"unsupported dtype {value.dtype}")


def _read_csv(labels: bytes, labels_name: str, m: int, limit: int) -> pd.DataFrame:
    if len(labels) > limit:
        raise CodesFileError(f"{labels_name} is {_mb(len(labels))}, more than the limit of {_mb(limit)}")
    try:
        df = pd.read_csv(io.BytesIO(labels))
    except pd.errors.EmptyDataError:
        raise CodesFileError(f"{labels_name} is empty; give a header line and one row per code") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise CodesFileError(f"{labels_name} cannot be read as CSV ({exc})") from None
    if len(df) != m:
        raise CodesFileError(f"{labels_name} has {len(df):,} rows but there are {m:,} codes; give a header line "
                             "and one row per code, in the codes' order")
    return df


def _sha256(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(hashlib.sha256(p).digest())
    return h.hexdigest()


def parse_codes(data: bytes, name: str = "codes.npz", action: str | None = None, labels: bytes | None = None,
                labels_name: str = "labels.csv", limit: int | None = None) -> UploadedCodes:
    """Check a codes file and its labels; the codes with their action and a table.

    Parameters
    ----------
    data : bytes
        The whole ``.npy`` or ``.npz`` file (e.g. ``uploaded_file.getvalue()``); the
        format is recognised by its first bytes, not by ``name``.
    name : str
        File name, used in messages and shown in the UI.
    action : str, optional
        Declared action (:func:`parse_action`); None: the file's ``action`` entry. If
        both are given they must agree.
    labels : bytes, optional
        A CSV with a header line and one row per code (labels, properties, ``id``).
    labels_name : str
        Its file name, for messages.
    limit : int, optional
        Size limit in bytes for the codes file (also once unpacked) and the CSV;
        default :func:`max_bytes`.

    Returns
    -------
    UploadedCodes

    Raises
    ------
    CodesFileError
        With a message naming the problem and what to do, for: a file over the size
        limit (packed or unpacked), a file that is not ``.npy`` / ``.npz`` or is corrupt,
        an object array (pickle refused), no ``codes`` array, no or an unknown or a
        conflicting declared action, codes that are not real numbers, codes of the wrong
        rank for the action, fewer than :data:`MIN_CODES` codes, NaN or infinite values, all codes identical,
        ``n`` or ``N`` other than declared (or 1), a mask of the wrong shape or dtype or
        for an action other than S_n, a label array without one value per code, a CSV
        that does not parse or has another number of rows than there are codes.
    """
    limit = max_bytes() if limit is None else int(limit)
    data = bytes(data)
    arrays, notes = _load_arrays(data, name, limit)
    key, more = _pick_codes(arrays, name)
    notes += more
    kind, size = _declared(arrays, action, name)
    codes, more = _make_codes(arrays[key], kind, size, arrays.get("mask"), name)
    notes += more
    m = len(codes)
    columns: dict[str, object] = {}
    for k, v in arrays.items():
        if k in (key, "mask", "action"):
            continue
        if v.ndim == 1:
            if len(v) != m:
                raise CodesFileError(f"array {k!r} of {name} has {len(v):,} values but there are {m:,} codes; "
                                     "a label array needs one value per code")
            try:
                columns[k] = _column(v)
            except CodesFileError as exc:
                raise CodesFileError(f"array {k!r} of {name}: {exc}; labels are numbers or strings") from None
        else:
            notes.append(f"ignored array {k!r} of shape {v.shape} (labels are 1-D, one value per code)")
    table = pd.DataFrame(columns)
    if labels is not None:
        csv = _read_csv(bytes(labels), labels_name, m, limit)
        clash = [c for c in csv.columns if c in table.columns]
        if clash:
            notes.append(f"{labels_name} replaces the file's column(s) {', '.join(map(str, clash))}")
        for c in csv.columns:
            table[str(c)] = csv[c].to_numpy()
    table, more = _finish_table(table, codes)
    notes += more
    label = action_label(*_sized(kind, codes))
    digest = _sha256(data, label.encode(), bytes(labels or b""))
    labels_cols = tuple(c for c in table.columns if c not in ("code_id", "code_norm"))
    return UploadedCodes(Path(name).name or "codes", codes, table, label, digest, labels_cols, tuple(notes))


def _sized(kind: str, codes: LatentCodes) -> tuple[str, int | None]:
    a = codes.action
    if kind == "S":
        return "S", a.n
    if kind == "C":
        return "C", a.N
    return "none", None


def column_kind(col: pd.Series) -> str | None:
    """How a label column is used: ``"category"``, ``"number"`` or None (not offered).

    Parameters
    ----------
    col : Series, one value per code.

    Returns
    -------
    str or None
        ``"category"`` for strings, booleans and whole numbers with at most
        :data:`MAX_CATEGORIES` distinct values and no missing value; ``"number"`` for
        other numbers (missing values allowed); None for strings with more distinct
        values.
    """
    distinct = col.nunique(dropna=True)
    kind = col.dtype.kind
    integral = kind in "biu" or (kind == "f" and bool(col.dropna().mod(1).eq(0).all()))
    if kind in "biuf" and not (integral and distinct <= MAX_CATEGORIES and not col.isna().any()):
        return "number"
    if distinct <= MAX_CATEGORIES and not col.isna().any():
        return "category"
    return None


def _finish_table(table: pd.DataFrame, codes: LatentCodes) -> tuple[pd.DataFrame, list[str]]:
    notes = []
    m = len(codes)
    ids = next((c for c in ID_COLUMNS if c in table.columns), None)
    out = pd.DataFrame({"code_id": table[ids].to_numpy() if ids else np.arange(m)})
    if ids and ids != "code_id":
        notes.append(f"column {ids!r} identifies the codes (shown as code_id)")
    for c in table.columns:
        if c == ids:
            continue
        name = c
        if name in ("code_id", "code_norm", "row"):
            name = f"{c} (yours)"
            notes.append(f"column {c!r} renamed to {name!r} (the name is taken)")
        values = table[c]
        if values.dtype.kind not in "biuf":  # text: missing entries become a category of their own
            values = values.where(values.notna(), "(missing)").astype(str)
        out[name] = values.to_numpy()
    out["code_norm"] = np.linalg.norm(codes.flat().astype(np.float64), axis=1)
    return out, notes


def load_codes_file(path: str | os.PathLike, action: str | None = None,
                    labels: str | os.PathLike | None = None, limit: int | None = None) -> UploadedCodes:
    """:func:`parse_codes` of a file on disk (and a labels CSV on disk).

    Parameters
    ----------
    path : path-like
        A ``.npy`` or ``.npz`` file.
    action, limit
        As in :func:`parse_codes`.
    labels : path-like, optional
        A CSV file, one row per code.

    Returns
    -------
    UploadedCodes

    Raises
    ------
    CodesFileError
        If a file is missing or over the size limit (checked before reading), or
        for every problem :func:`parse_codes` reports.
    """
    limit = max_bytes() if limit is None else int(limit)
    blobs = []
    for p in (path, labels):
        if p is None:
            blobs.append(None)
            continue
        p = Path(p)
        try:
            size = p.stat().st_size
        except OSError as exc:
            raise CodesFileError(f"cannot read {p}: {exc.strerror or exc}") from None
        if size > limit:
            raise CodesFileError(f"{p.name} is {_mb(size)}, more than the limit of {_mb(limit)} "
                                 "(set ELX_CODES_MAX_MB to raise it)")
        blobs.append(p.read_bytes())
    return parse_codes(blobs[0], Path(path).name, action, blobs[1],
                       Path(labels).name if labels is not None else "labels.csv", limit)


# ---------------------------------------------------------------------------- registry entry
def presentations(codes: LatentCodes, seed: int) -> tuple[LatentCodes, np.ndarray]:
    """The codes re-presented: each code acted on by its own seeded random group element.

    Parameters
    ----------
    codes : LatentCodes (M, ...)
    seed : int
        Seed of the group elements.

    Returns
    -------
    moved : LatentCodes (M, ...)
        ``g_i . z_i`` (mask moved along); the codes themselves for ``none``.
    elements : ndarray
        (M, n) permutations (S_n), (M,) shifts (C_N) or (M,) zeros (none).
    """
    a, m = codes.action, len(codes)
    if isinstance(a, TrivialAction):
        return codes, np.zeros(m, dtype=np.int64)
    rng = np.random.default_rng(seed)
    g = a.random_element(rng, size=m)
    return codes.act(g), np.asarray(g, dtype=np.int64)


class CodesEntry(registry.ModelEntry):
    """Your own codes as a registry entry: no weights, no model, no inputs, no decoder.

    Built from :class:`UploadedCodes`; id ``codes_<first 12 hex of the SHA-256>``. The
    ``stored`` presentation is the codes as given; ``random`` acts on each code with a
    seeded random element of its action (the latent action itself, so this measures the
    projection, not your encoder, which the dashboard does not have). Colour options are
    the label columns (categories when they have at most :data:`MAX_CATEGORIES` distinct
    values; strings with more are kept in the table but not offered) and the code's norm.
    """

    family = "codes"
    item_noun = "code"
    has_decoder = False
    has_weights = False
    codes_only = True
    input_action_description = "none (codes only: no model and no inputs)"
    presentation_label = "Presentation of the codes"
    order_labels = {"random": "re-presented (random group element per code)", "stored": "as given"}
    order_help = ("as given: the codes as in the file; re-presented: each code acted on by a seeded random "
                  "element of its latent action (tests the projection, not your encoder).")
    id_col = "code_id"
    train_hint = "upload codes in the sidebar, or start with --codes / ELX_CODES"

    def __init__(self, data: UploadedCodes, uploaded: bool = True):
        super().__init__(f"codes_{data.sha256[:12]}",
                         f"Your codes · {data.name} · {len(data):,} × "
                         f"{' × '.join(map(str, _shown_shape(data.codes)))} · {data.action}")
        self.data = data
        self.uploaded = uploaded
        self.dataset_name = data.name
        self.hover_label_col = next((c for c in data.label_columns if c in self._color_keys()), "code_id")
        self._lock, self._encoded = threading.RLock(), {}

    # -- what ModelEntry offers, without files
    def reset(self) -> None:
        """Nothing cached from files; forget the re-presented codes."""
        with self._lock:
            self._encoded = {}

    def _check_files(self) -> None:
        """Nothing to check: no weights."""

    @property
    def sidecar(self) -> dict:
        """What the overview page shows as the model card."""
        return {"model_config": {"code_shape": list(_shown_shape(self.data.codes)), "action": self.data.action},
                "codes_file": self.data.name, "codes": len(self.data), "sha256": self.data.sha256,
                "labels": list(self.data.label_columns), "notes": list(self.data.notes)}

    @property
    def weights_sha256(self) -> str:
        """The codes' SHA-256 (there are no weights); hex string."""
        return self.data.sha256

    def card_text(self) -> str:
        """Markdown: where the codes came from and what is (not) available."""
        a = self.data.action
        act = {"none": "no latent action (the only projection is the identity)"}.get(
            a, f"latent action **{a}** ({'rows permuted' if a.startswith('S') else 'fibre shifted cyclically'})")
        labels = ", ".join(f"`{c}`" for c in self.data.label_columns) or "none (colour by the code's norm)"
        return (f"**{len(self.data):,} codes** from `{self.data.name}`, {act}; labels: {labels}. No model: "
                "Latent maps and Downstream (distortion, probes) work on the codes; Interpolation and Orbits "
                "need inputs and a decoder, which codes alone do not have.")

    def data_loading_message(self) -> str:
        """What the app says while the table is read (instant: it is in memory)."""
        return f"Reading {self.data.name}..."

    def model(self):
        """No model: codes only."""
        return None

    @property
    def latent_action(self):
        """The declared action: PermutationAction, CyclicShiftAction or TrivialAction."""
        return self.data.codes.action

    def dataset(self):
        """An object with the ``table`` (one row per code)."""
        import types

        return types.SimpleNamespace(table=self.data.table)

    def _color_keys(self) -> list[str]:
        return [c.key for c in self.color_options()]

    def color_options(self) -> list[registry.ColorOption]:
        """Label columns (numbers: a colour scale; few distinct values: categories) and the code's norm."""
        out = []
        for c in self.data.label_columns:
            kind = column_kind(self.data.table[c])
            if kind == "number":
                out.append(registry.ColorOption(c, c, "as given"))
            elif kind == "category":
                out.append(registry.ColorOption(c, c, "category", categorical=True))
        out.append(registry.ColorOption("code_norm", "norm of the code", "latent units"))
        return out

    def encoded_cache_path(self, node_order_seed: int) -> Path:
        """A small marker written once this seed's presentations were made (the codes stay in memory)."""
        from backend.data.qm9 import cache_dir

        return cache_dir() / f"{self.id}_seed{node_order_seed}.json"

    def encode_dataset(self, node_order_seed: int = 0, progress=None, on_wait=None) -> EncodedDataset:
        """The codes as given (``stored``) and re-presented by seeded random group elements (``random``).

        ``progress(fraction, message)`` is told once at the end; ``on_wait`` is accepted for the
        common signature and never called (nothing is encoded, so no one waits)."""
        with self._lock:
            if node_order_seed not in self._encoded:
                moved, elements = presentations(self.data.codes, node_order_seed)
                self._encoded = {k: v for k, v in list(self._encoded.items())[-1:]}
                self._encoded[node_order_seed] = (moved, elements)
            moved, elements = self._encoded[node_order_seed]
        path = self.encoded_cache_path(node_order_seed)
        if not path.exists():
            try:
                path.write_text(json.dumps({"codes": self.data.name, "sha256": self.data.sha256,
                                            "seed": node_order_seed}))
            except OSError:
                pass  # only a marker; the codes are in memory
        if callable(progress):
            progress(1.0, f"{len(self.data):,} codes")
        return EncodedDataset(self.data.table, self.data.codes, moved, elements, node_order_seed, path)

    def decode(self, codes: LatentCodes) -> list:
        """Not available.

        Raises
        ------
        NotImplementedError
            Always: codes alone have no decoder (``has_decoder`` is False).
        """
        raise NotImplementedError("codes alone have no decoder")

    def describe_row(self, row: int) -> dict:
        """``{"title": "code <id> (<label column> <value>)"}`` for table row ``row`` (0..M-1)."""
        t = self.data.table.iloc[row]
        extra = f" ({self.hover_label_col} {t[self.hover_label_col]})" if self.hover_label_col != "code_id" else ""
        return {"title": f"code {t['code_id']}{extra}"}

    def render_row(self, row: int, size: tuple[int, int] = (260, 60)) -> str:
        """An SVG (``size`` = (width, height) in pixels) with the row's title: codes have no picture."""
        import html

        w, h = size
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}"><text x="4" y="{h // 2}" '
                f'font-family="sans-serif" font-size="13">{html.escape(self.describe_row(row)["title"])}</text></svg>')

    def code_figure(self, z: np.ndarray, mask, title: str):
        """Bars per node slot (S_n), a heatmap of fields by fibre position (C_N), or the values (none)."""
        from backend import plots

        a = self.latent_action
        if isinstance(a, TrivialAction):
            v = np.asarray(z).reshape(1, -1)
            fig = plots.code_heatmap(v, title + " (values in order)")
            fig.update_layout(xaxis_title="code entry (no group structure)")
            return fig
        if isinstance(a, CyclicShiftAction):
            return plots.code_heatmap(z, title)
        return plots.code_bar(z, mask, title)


def _shown_shape(codes: LatentCodes) -> tuple[int, ...]:
    shape = tuple(codes.action.code_shape)
    return shape[:1] if isinstance(codes.action, TrivialAction) else shape


_REG_LOCK = threading.RLock()
_UPLOADED: OrderedDict[str, None] = OrderedDict()


def register(data: UploadedCodes, uploaded: bool = True) -> CodesEntry:
    """Put the codes into :data:`backend.registry.MODELS` as a :class:`CodesEntry`.

    The same codes (same SHA-256) map to the same entry. At most :data:`MAX_UPLOADED`
    uploaded sets are kept; registering another drops the oldest from the registry.
    Command-line sets (``uploaded=False``) always stay.

    Parameters
    ----------
    data : UploadedCodes
    uploaded : bool
        True for a file uploaded in a browser session (the app shows it only to that
        session), False for command-line codes (shown to everyone).

    Returns
    -------
    CodesEntry
        The registered entry (an existing one for the same codes).
    """
    with _REG_LOCK:
        model_id = f"codes_{data.sha256[:12]}"
        entry = registry.MODELS.get(model_id)
        if not isinstance(entry, CodesEntry):
            entry = CodesEntry(data, uploaded)
            registry.MODELS[model_id] = entry
        if not uploaded:
            entry.uploaded = False
            _UPLOADED.pop(model_id, None)
        elif entry.uploaded:
            _UPLOADED[model_id] = None
            _UPLOADED.move_to_end(model_id)
            while len(_UPLOADED) > MAX_UPLOADED:
                old, _ = _UPLOADED.popitem(last=False)
                registry.MODELS.pop(old, None)
        return entry


# ---------------------------------------------------------------------------- command line
@dataclass(frozen=True)
class CodesSource:
    """Codes named at start-up: a file, its declared action (None: from the file) and a labels CSV."""

    path: str
    action: str | None = None
    labels: str | None = None


def startup_sources(argv: list[str] | None = None, environ: dict | None = None) -> list[CodesSource]:
    """Codes files named on the command line or in the environment.

    ``streamlit run app.py -- --codes a.npz [--action C_8] [--labels a.csv]`` (Streamlit
    hands the arguments after ``--`` to the script as ``sys.argv``; ``--codes`` may be
    repeated, each ``--action`` / ``--labels`` applies to the ``--codes`` before it), and
    ``$ELX_CODES`` (a path) with ``$ELX_CODES_ACTION`` and ``$ELX_CODES_LABELS``.

    Parameters
    ----------
    argv : list of str, optional
        Default ``sys.argv[1:]``; unknown arguments are ignored.
    environ : mapping, optional
        Default ``os.environ``.

    Returns
    -------
    list of CodesSource
        In the order given, command line first; empty when none.
    """
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    env = os.environ if environ is None else environ
    out: list[CodesSource] = []
    # pair each --action / --labels with the --codes before it
    current: dict | None = None
    groups = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        key, _, inline = arg.partition("=")
        if key in ("--codes", "--action", "--labels"):
            value = inline if inline else (argv[i + 1] if i + 1 < len(argv) else "")
            i += 1 if inline else 2
            if key == "--codes":
                current = {"path": value}
                groups.append(current)
            elif current is not None:
                current[key[2:]] = value
            continue
        i += 1
    out.extend(CodesSource(g["path"], g.get("action") or None, g.get("labels") or None) for g in groups if g["path"])
    path = str(env.get("ELX_CODES", "")).strip()
    if path:
        out.append(CodesSource(path, str(env.get("ELX_CODES_ACTION", "")).strip() or None,
                               str(env.get("ELX_CODES_LABELS", "")).strip() or None))
    return out


_STARTUP: dict[tuple, tuple[str | None, str | None]] = {}


def register_startup(argv: list[str] | None = None, environ: dict | None = None) -> list[tuple[str | None, str | None]]:
    """Load and register the codes of :func:`startup_sources` (once per file version).

    Returns
    -------
    list of (model id or None, error message or None)
        One per source; a source whose file did not change is not read again.
    """
    out = []
    for src in startup_sources(argv, environ):
        try:
            stat = os.stat(src.path)
            key = (src, stat.st_mtime_ns, stat.st_size)
        except OSError:
            key = (src, None, None)
        with _REG_LOCK:
            if key not in _STARTUP:
                try:
                    entry = register(load_codes_file(src.path, src.action, src.labels), uploaded=False)
                    _STARTUP[key] = (entry.id, None)
                except CodesFileError as exc:
                    _STARTUP[key] = (None, f"{src.path}: {exc}")
            out.append(_STARTUP[key])
    return out
