"""Bring your own inputs: molecules (SMILES files or typed) and digit images, encoded by the
selected model and placed on both maps.

A user's files are read into :class:`UserInputs`: one row per input line or image with its
status (``parsed`` / ``rejected``) and the reason or preprocessing note, plus the accepted inputs
as one batch of the domain's input type. Then, for the selected model and sidebar settings:

* :func:`encode` gives their codes (re-presented like the data set under ``order="random"``;
  an input that the data set holds keeps its stored code, so it lands on its own map point);
* :func:`place` puts them on both maps with the maps' *fitted* PCA transforms (the maps are
  never refitted for a user's inputs);
* :func:`endpoint` and the ``inputs=`` argument of :func:`backend.views.orbit_view` make one of
  them an interpolation endpoint or an orbit input.

Readers exist per domain family (:data:`READERS`; :func:`reader_for` gives None for families
without one, e.g. codes-only entries):

* **molecules** (:class:`MoleculeReader`): a ``.csv`` with a header column named ``smiles``
  (any case; an optional ``name`` / ``id`` / ``title`` column), a ``.smi`` / ``.txt`` with one
  SMILES per line and an optional name after it, or typed SMILES. Explicit hydrogens and stereo
  are normalised first (:func:`backend.data.qm9.molecule_from_text`); rows are refused with a
  reason: *cannot parse*, *element not in C/N/O/F*, *more than 9 heavy atoms*, *radical*,
  *disconnected* (and *net charge*, *isotope label*, *charge state not supported*);
* **images** (:class:`ImageReader`): PNG / JPEG (anything Pillow reads), made into a rotated-MNIST
  input by :func:`load_image` (alpha over white, white ink on black, the MNIST layout in 29 × 29);
  blank images are refused (*no ink found*).

Bytes come from the caller (``UploadedFile.getvalue()`` on the page side); nothing is written to
disk. Accepted sets are kept in a small process-wide store by their digest (:func:`remember`,
:func:`lookup`), so cached page functions can name them by a hashable key.

Sources: the MNIST layout (LeCun et al., 1998: the digit scaled into a 20 × 20 box, anti-aliased,
centred by its centre of mass in 28 × 28); Pillow for decoding; RDKit for SMILES.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

#: most SMILES rows read from one upload (files and typed text together)
MAX_ROWS = 2000
#: most images in one upload
MAX_IMAGES = 200
#: largest image file (bytes) and image (pixels) accepted
MAX_IMAGE_BYTES = 20_000_000
MAX_IMAGE_PIXELS = 25_000_000
#: MNIST layout: the ink's longer side is scaled to this many pixels
DIGIT_BOX = 20
#: an image whose ink rises less than this above its background (0..1) is blank
MIN_CONTRAST = 0.15
#: after contrast normalisation, pixels below this count as background when cropping
INK_LEVEL = 0.1
#: typed SMILES are separated by white space, commas or semicolons
_TYPED_SEPARATORS = re.compile(r"[\s,;]+")
#: CSV columns naming a molecule, in order of preference (compared case-insensitively)
NAME_COLUMNS = ("name", "id", "title", "mol_name", "molecule", "compound")


# --------------------------------------------------------------------------- errors
class UserInputError(ValueError):
    """Base class of what this module refuses with a message."""


class InputFileError(UserInputError):
    """A whole upload cannot be read (not UTF-8 text, no ``smiles`` column, too many rows)."""


class ImageInputError(UserInputError):
    """One image is refused (the subclasses say why)."""


class NotAnImageError(ImageInputError):
    """The bytes are not an image Pillow can read (or the file is empty or truncated)."""


class ImageTooLargeError(ImageInputError):
    """The file or the image is larger than :data:`MAX_IMAGE_BYTES` / :data:`MAX_IMAGE_PIXELS`."""


class BlankImageError(ImageInputError):
    """No ink found: every pixel is within :data:`MIN_CONTRAST` of the background."""


class UnknownInputsError(LookupError):
    """No accepted set with this digest is held (:func:`lookup`); upload the inputs again."""


# --------------------------------------------------------------------------- the result
@dataclass(frozen=True, eq=False)
class UserInputs:
    """A user's inputs for one model, as read and checked.

    Attributes
    ----------
    model_id : str, the model they were read for (its node budget, its data set).
    family : str, the domain family (``"molecules"``, ``"images"``).
    table : DataFrame, one row per input line / image, in upload order: ``source`` (file name or
        ``typed``), ``line`` (1-based line in a text file, 0 for images), ``name``, ``input``
        (as written, or the image's size and mode), ``status`` (``parsed`` / ``rejected``),
        ``reason`` (rejected rows: ``"<category>: <message>"``), ``note`` (parsed rows: what was
        normalised or resized), ``in_data`` (the data-set row holding the same input, -1 if none) and
        ``matches`` (that row's title, e.g. ``QM9 #120: COC=NC``; ``""`` if none).
    inputs : batch of the accepted inputs in the domain's input type (A items; a
        :class:`~backend.families.molecules.GraphBatch` or images (A, 1, 29, 29) float32), or
        None when nothing was accepted.
    rows : ndarray (A,), int64, the data-set row of each accepted input, -1 if the data set does
        not hold it.
    labels : tuple of A str, a short label per accepted input (its name, else its text / file).
    values : DataFrame with A rows, colour columns known for the inputs themselves (e.g.
        ``n_atoms``, ``n_rings``); NaN where unknown.
    digest : str, SHA-256 of the model id and the uploaded bytes and text (the set's key).
    """

    model_id: str
    family: str
    table: pd.DataFrame
    inputs: Any
    rows: np.ndarray
    labels: tuple[str, ...]
    values: pd.DataFrame
    digest: str

    def __len__(self) -> int:
        """Number of accepted inputs A."""
        return len(self.labels)

    @property
    def n_rejected(self) -> int:
        """Rows of :attr:`table` that were refused."""
        return int((self.table["status"] == "rejected").sum()) if len(self.table) else 0

    def item(self, index: int):
        """The accepted input ``index`` as a batch of one (the domain's input type).

        Raises
        ------
        IndexError
            If ``index`` is not in ``0 .. A-1``.
        """
        if not 0 <= int(index) < len(self):
            raise IndexError(f"no accepted input {index}; there are {len(self)}")
        return self.inputs[[int(index)]]

    def summary(self) -> str:
        """One line: ``"3 parsed, 2 rejected"``."""
        return f"{len(self)} parsed, {self.n_rejected} rejected"

    def results_table(self) -> pd.DataFrame:
        """The per-row results for display: ``source``, ``line``, ``name``, ``input``, ``result``
        (``parsed`` plus the note, or ``rejected: <reason>``)."""
        t = self.table
        if not len(t):
            return pd.DataFrame(columns=["source", "line", "name", "input", "result"])
        result = np.where(t["status"] == "parsed",
                          ("parsed" + np.where(t["note"] != "", " · " + t["note"], "")).astype(object),
                          ("rejected: " + t["reason"]).astype(object))
        out = t[["source", "line", "name", "input"]].copy()
        out["result"] = result
        return out


def digest_of(model_id: str, files: list[tuple[str, bytes]], typed: str = "") -> str:
    """SHA-256 (hex) of a model id, uploaded files ``(name, bytes)`` and typed text: the key of a
    :class:`UserInputs` (the same upload for another model is another set)."""
    h = hashlib.sha256()
    for part in (model_id.encode(), str(typed).encode()):
        h.update(len(part).to_bytes(8, "little") + part)
    for name, data in files:
        for part in (str(name).encode(), bytes(data)):
            h.update(len(part).to_bytes(8, "little") + part)
    return h.hexdigest()


_TABLE_COLUMNS = ["source", "line", "name", "input", "status", "reason", "note", "in_data", "matches"]


def _table(records: list[dict]) -> pd.DataFrame:
    """The per-row table of :class:`UserInputs` from dicts (missing keys: ``""`` / -1)."""
    blank = {"source": "", "line": 0, "name": "", "input": "", "status": "", "reason": "", "note": "",
             "in_data": -1, "matches": ""}
    t = pd.DataFrame([{**blank, **r} for r in records], columns=_TABLE_COLUMNS)
    return t.astype({"line": np.int64, "in_data": np.int64})


# --------------------------------------------------------------------------- readers
class InputReader(ABC):
    """Reads a user's files (and typed text) for one domain family into :class:`UserInputs`."""

    family: ClassVar[str]
    noun: ClassVar[str]  #: plural, for labels ("molecules")
    file_types: ClassVar[tuple[str, ...]]  #: extensions the uploader offers, without dots
    file_label: ClassVar[str]
    typed_label: ClassVar[str | None] = None  #: label of a text box (None: no typed input)
    help: ClassVar[str] = ""

    def help_text(self, entry) -> str:
        """:attr:`help` for ``entry`` (placeholders such as ``{max_nodes}`` filled in)."""
        return self.help

    @abstractmethod
    def read(self, entry, files: list[tuple[str, bytes]], typed: str = "") -> UserInputs:
        """The inputs of ``files`` (``(name, bytes)``) and ``typed`` text for ``entry``.

        Raises
        ------
        InputFileError
            If an upload as a whole cannot be read (single bad rows are rejected in the table).
        """


# --- molecules
def _decode_text(data: bytes, name: str) -> str:
    """UTF-8 text of an upload (a byte-order mark is dropped). Raises InputFileError otherwise."""
    try:
        return bytes(data).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputFileError(f"{name}: not UTF-8 text (byte {exc.start} cannot be decoded); save the "
                             "file as UTF-8 (plain ASCII SMILES are fine)") from None


def smiles_rows(data: bytes, name: str) -> list[dict]:
    """The SMILES rows of one uploaded file.

    * ``.csv``: a header line with a column named ``smiles`` (any case); the name comes from a
      column in :data:`NAME_COLUMNS` if there is one. Empty lines are skipped.
    * anything else (``.smi``, ``.txt``): one SMILES per line, optionally followed by white space
      and a name; empty lines and lines starting with ``#`` are skipped, as is a first line whose
      first word is ``smiles`` (a header).

    Parameters
    ----------
    data : bytes, the file's content (UTF-8).
    name : str, the file name (its extension decides the format; used in messages).

    Returns
    -------
    list of dict with ``source`` (= name), ``line`` (1-based line of the file), ``name`` and
    ``input`` (the SMILES as written, stripped).

    Raises
    ------
    InputFileError
        Not UTF-8; a CSV without a header or without a ``smiles`` column, or one CSV cannot parse.
    """
    text = _decode_text(data, name)
    rows = []
    if name.lower().endswith(".csv"):
        reader = csv.reader(io.StringIO(text, newline=""))
        try:
            header = None
            for cells in reader:
                if not any(c.strip() for c in cells):
                    continue
                if header is None:
                    header = [c.strip().lower() for c in cells]
                    if "smiles" not in header:
                        raise InputFileError(
                            f"{name}: no column named smiles in the header ({', '.join(cells[:8])}); "
                            "give the CSV a header line with a smiles column, or upload a .smi file "
                            "(one SMILES per line)")
                    col = header.index("smiles")
                    name_col = next((header.index(c) for c in NAME_COLUMNS if c in header), None)
                    continue
                get = lambda i: cells[i].strip() if i is not None and i < len(cells) else ""  # noqa: E731
                rows.append({"source": name, "line": reader.line_num, "name": get(name_col), "input": get(col)})
        except csv.Error as exc:
            raise InputFileError(f"{name}: not a readable CSV (line {reader.line_num}: {exc})") from None
        if header is None:
            raise InputFileError(f"{name}: the file is empty; it needs a header line with a smiles column")
        return rows
    for number, line in enumerate(text.splitlines(), start=1):
        body = line.strip()
        if not body or body.startswith("#"):
            continue
        parts = body.split(None, 1)
        if not rows and parts[0].lower() == "smiles":
            continue  # a header line
        rows.append({"source": name, "line": number, "name": parts[1].strip() if len(parts) > 1 else "",
                     "input": parts[0]})
    return rows


def typed_rows(text: str) -> list[dict]:
    """SMILES typed in a text box, separated by white space, commas or semicolons (no names).

    Returns
    -------
    list of dict as :func:`smiles_rows` (``source="typed"``, ``line`` = position 1, 2, ...).
    """
    tokens = [t for t in _TYPED_SEPARATORS.split(str(text or "")) if t]
    return [{"source": "typed", "line": i, "name": "", "input": t} for i, t in enumerate(tokens, start=1)]


def rejection(exc: Exception, max_nodes: int) -> str:
    """``"<category>: <message>"`` for a molecule refused by the featurization.

    Categories: ``cannot parse`` (InvalidSmilesError), ``element not in C/N/O/F`` or ``charge
    state not supported`` or ``bond type not supported`` (UnsupportedElementError), ``more than
    <max_nodes> heavy atoms`` (TooManyAtomsError), ``radical`` (RadicalError), ``disconnected``
    (DisconnectedError), ``net charge`` (NetChargeError), ``isotope label`` (IsotopeError); any
    other error: its class name.
    """
    from backend.data import qm9

    message = str(exc)
    if isinstance(exc, qm9.InvalidSmilesError):
        category = "cannot parse"
    elif isinstance(exc, qm9.UnsupportedElementError):
        atom = re.match(r"atom ([A-Z][a-z]?)", message)
        if atom is None:
            category = "bond type not supported"
        elif atom.group(1) in qm9.SUPPORTED_ELEMENTS:
            category = "charge state not supported"
        else:
            category = "element not in " + "/".join(qm9.SUPPORTED_ELEMENTS)
    elif isinstance(exc, qm9.TooManyAtomsError):
        category = f"more than {max_nodes} heavy atoms"
    elif isinstance(exc, qm9.RadicalError):
        category = "radical"
    elif isinstance(exc, qm9.DisconnectedError):
        category = "disconnected"
    elif isinstance(exc, qm9.NetChargeError):
        category = "net charge"
    elif isinstance(exc, qm9.IsotopeError):
        category = "isotope label"
    else:
        category = type(exc).__name__
    return f"{category}: {message}"


def _normalised(text: str, canon: str) -> list[str]:
    """Notes on what normalisation changed in ``text`` (its canonical form is ``canon``): explicit
    hydrogen atoms (``[H]``) folded into their heavy atoms, stereo marks (``@``, ``/``, ``\\``)
    removed; empty when neither was written."""
    done = []
    if "[H]" in text:
        done.append("explicit [H] folded into their atoms")
    if any(c in text for c in "@/\\"):
        done.append("stereo removed")
    return [", ".join(done) + f": {canon}"] if done else []


class MoleculeReader(InputReader):
    """SMILES from ``.csv`` / ``.smi`` / ``.txt`` files and typed text (see :func:`smiles_rows`,
    :func:`typed_rows`), checked by the QM9 featurization for the model's node budget."""

    family = "molecules"
    noun = "molecules"
    file_types = ("csv", "smi", "txt")
    file_label = "SMILES files (.csv with a smiles column, or .smi: one per line, optional name)"
    typed_label = "Or type SMILES (separated by spaces, commas or new lines)"
    help = ("Your molecules are encoded by the selected model and drawn on both maps as diamonds. "
            "Stereo and explicit [H] are normalised first; the model knows C, N, O, F with at most "
            "{max_nodes} heavy atoms, closed shell, one fragment.")

    def help_text(self, entry) -> str:
        """:attr:`help` with the model's node budget."""
        from backend.data import qm9

        return self.help.format(max_nodes=int(getattr(entry.domain, "max_nodes", qm9.MAX_NODES)))

    def read(self, entry, files: list[tuple[str, bytes]], typed: str = "") -> UserInputs:
        """Per-row results and the accepted graphs (see :class:`UserInputs`).

        Each row's SMILES is parsed and normalised (:func:`backend.data.qm9.molecule_from_text`)
        and featurized (:func:`backend.data.qm9.mol_to_graph`, node budget of the model's domain);
        a molecule the data set holds (same normalised canonical SMILES) records its row.

        Raises
        ------
        InputFileError
            For a file that cannot be read (:func:`smiles_rows`), no SMILES at all, or more than
            :data:`MAX_ROWS` rows.
        """
        from rdkit import Chem

        from backend.data import qm9
        from backend.families.molecules import GraphBatch

        records = [r for name, data in files for r in smiles_rows(data, name)] + typed_rows(typed)
        if not records:
            raise InputFileError("no SMILES found: the files hold no rows and nothing was typed")
        if len(records) > MAX_ROWS:
            raise InputFileError(f"{len(records):,} SMILES rows; at most {MAX_ROWS:,} can be encoded at once "
                                 "(split the file)")
        max_nodes = int(getattr(entry.domain, "max_nodes", qm9.MAX_NODES))
        data = entry.dataset()
        lookup = getattr(data, "rows_of_smiles", None)
        graphs, rows, labels, n_atoms, n_rings = [], [], [], [], []
        for rec in records:
            text = rec["input"]
            try:
                mol = qm9.molecule_from_text(text)
                graph = qm9.mol_to_graph(mol, max_nodes)
            except qm9.MoleculeError as exc:
                rec.update(status="rejected", reason=rejection(exc, max_nodes))
                continue
            canon = Chem.MolToSmiles(mol)
            found = lookup(canon) if lookup is not None else np.empty(0, np.int64)
            row = int(found[0]) if len(found) else -1
            notes = _normalised(text, canon)
            matches = entry.describe_row(row)["title"] if row >= 0 else ""
            if matches:
                notes.append(f"in the data set: {matches}")
            rec.update(status="parsed", note="; ".join(notes), in_data=row, matches=matches)
            graphs.append(graph)
            rows.append(row)
            labels.append(rec["name"] or canon)
            n_atoms.append(int((graph.types > 0).sum()))
            n_rings.append(int(mol.GetRingInfo().NumRings()))
        return UserInputs(
            model_id=entry.id, family=self.family, table=_table(records),
            inputs=GraphBatch.from_graphs(graphs) if graphs else None,
            rows=np.array(rows, dtype=np.int64), labels=tuple(labels),
            values=pd.DataFrame({"n_atoms": np.array(n_atoms, dtype=np.int64),
                                 "n_rings": np.array(n_rings, dtype=np.int64)}),
            digest=digest_of(entry.id, files, typed))


# --- images
@dataclass(frozen=True)
class LoadedImage:
    """One image made into a model input.

    Attributes
    ----------
    image : ndarray (S, S), float32 in [0, 1], white ink (1) on black (0), zero outside the
        inscribed disc.
    note : str, what was done (size and mode read, alpha, inversion, resizing and padding).
    """

    image: np.ndarray
    note: str


def _luminance_alpha(img) -> tuple[np.ndarray, np.ndarray, str]:
    """Grey levels and opacity (H, W), float64 in [0, 1], of a Pillow image of any mode, and a note
    on the bit depth. 16-bit grey (``I;16*``, ``I``) is scaled by 65535 (by 255 when an ``I``
    image holds only 8-bit values); palette images go through RGBA (their transparency kept)."""
    mode = img.mode
    if mode.startswith("I;16") or mode == "I":
        arr = np.asarray(img).astype(np.float64)
        full = 65535.0 if mode != "I" or arr.max(initial=0) > 255 else 255.0
        return np.clip(arr / full, 0.0, 1.0), np.ones_like(arr), "16-bit grey" if full > 255 else ""
    if mode == "F":
        arr = np.nan_to_num(np.asarray(img).astype(np.float64))
        top = arr.max(initial=0.0)
        return np.clip(arr / top if top > 1 else arr, 0.0, 1.0), np.ones_like(arr), "float grey"
    has_alpha = "A" in mode or "a" in mode or "transparency" in img.info
    if has_alpha:
        la = np.asarray(img.convert("RGBA").convert("LA")).astype(np.float64) / 255.0
        return la[..., 0], la[..., 1], "palette" if mode.startswith("P") else ""
    grey = np.asarray(img.convert("RGB").convert("L")).astype(np.float64) / 255.0
    return grey, np.ones_like(grey), "palette" if mode == "P" else ""


def _place_in_square(ink: np.ndarray, size: int) -> tuple[np.ndarray, str]:
    """The ink (H, W) in [0, 1] cropped to its bounding box, its longer side scaled to
    :data:`DIGIT_BOX` (aspect kept; area-averaged when shrinking, bilinear when enlarging) and
    placed in a ``size × size`` canvas with its centre of mass on the centre pixel."""
    from PIL import Image

    ys, xs = np.nonzero(ink > INK_LEVEL)
    crop = ink[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    h, w = crop.shape
    scale = DIGIT_BOX / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    how = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    patch = np.clip(np.asarray(Image.fromarray(crop.astype(np.float32)).resize((nw, nh), how)), 0.0, 1.0)
    mass = patch.sum()
    cy = (patch.sum(1) @ np.arange(nh)) / mass if mass > 0 else (nh - 1) / 2
    cx = (patch.sum(0) @ np.arange(nw)) / mass if mass > 0 else (nw - 1) / 2
    c = (size - 1) / 2
    top = int(np.clip(round(c - cy), 0, size - nh))
    left = int(np.clip(round(c - cx), 0, size - nw))
    canvas = np.zeros((size, size), np.float32)
    canvas[top:top + nh, left:left + nw] = patch
    verb = "shrunk to" if scale < 1 else "enlarged to" if scale > 1 else "kept at"
    return canvas, (f"ink {w}×{h} px {verb} {nw}×{nh} (MNIST's {DIGIT_BOX}-px digit box), centred by its "
                    f"centre of mass and padded to {size} × {size}")


def load_image(data: bytes, name: str = "image", size: int | None = None) -> LoadedImage:
    """A digit image file as a rotated-MNIST input: white ink on black, ``size × size``.

    Steps: decode with Pillow (first frame of an animation); grey levels of any mode (16-bit grey
    scaled by 65535, palette images through RGBA); alpha composited over white; polarity made
    white-on-black (inverted when the border is light); contrast stretched from the background
    (median of the border) to the brightest ink; an image already 28 × 28 is zero-padded as MNIST
    was (:func:`backend.data.mnist.pad_mnist`) and a 29 × 29 one kept, any other is cropped to its
    ink, scaled so the longer side is :data:`DIGIT_BOX` px and centred by its centre of mass; last,
    zero outside the inscribed disc (:func:`backend.data.mnist.disc_mask`), like the data set.

    Parameters
    ----------
    data : bytes, the file's content (e.g. ``UploadedFile.getvalue()``).
    name : str, the file name, for messages.
    size : int, optional, odd output side in pixels (default :data:`backend.data.mnist.ROTATED_SIZE`, 29).

    Returns
    -------
    LoadedImage : ``image`` (size, size) float32 in [0, 1] and a ``note`` on what was done.

    Raises
    ------
    NotAnImageError
        Empty, unreadable or truncated data.
    ImageTooLargeError
        More than :data:`MAX_IMAGE_BYTES` bytes or :data:`MAX_IMAGE_PIXELS` pixels.
    BlankImageError
        "no ink found": the ink rises less than :data:`MIN_CONTRAST` above the background.
    """
    import warnings

    from PIL import Image, UnidentifiedImageError

    from backend.data import mnist

    size = mnist.ROTATED_SIZE if size is None else int(size)
    if not data:
        raise NotAnImageError(f"{name}: the file is empty")
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageTooLargeError(f"{name}: {len(data) / 1e6:.1f} MB; at most {MAX_IMAGE_BYTES / 1e6:.0f} MB per image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(bytes(data)))
            w, h = img.size
            if w * h > MAX_IMAGE_PIXELS:
                raise ImageTooLargeError(f"{name}: {w}×{h} pixels; at most {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels")
            frames = int(getattr(img, "n_frames", 1) or 1)
            img.load()
    except ImageTooLargeError:
        raise
    except Image.DecompressionBombError:
        raise ImageTooLargeError(f"{name}: far more than {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels") from None
    except UnidentifiedImageError:
        raise NotAnImageError(f"{name}: cannot read it as an image (not a PNG, JPEG or other format Pillow "
                              "reads); upload a PNG or JPEG") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise NotAnImageError(f"{name}: cannot read it as an image ({type(exc).__name__}: {exc}); "
                              "upload a PNG or JPEG") from None
    notes = [f"{w}×{h} {img.mode}" + (f" (first of {frames} frames)" if frames > 1 else "")]
    grey, alpha, depth = _luminance_alpha(img)
    if depth:
        notes[0] += f", {depth}"
    if alpha.min(initial=1.0) < 1.0:
        grey = alpha * grey + (1.0 - alpha)  # over white
        notes.append("alpha composited over white")
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    background = float(np.median(border))
    if background > 0.5:
        grey, background = 1.0 - grey, 1.0 - background
        notes.append("dark ink on a light background, inverted to white on black")
    contrast = float(grey.max(initial=0.0)) - background
    if contrast < MIN_CONTRAST:
        raise BlankImageError(f"{name}: no ink found (every pixel is within {100 * max(contrast, 0):.0f} % of the "
                              f"background grey; a digit needs at least {100 * MIN_CONTRAST:.0f} %)")
    ink = np.clip((grey - background) / contrast, 0.0, 1.0)
    if (h, w) == (mnist.MNIST_SIZE, mnist.MNIST_SIZE) and size >= mnist.MNIST_SIZE + 1:
        out = mnist.pad_mnist(ink.astype(np.float32), size)
        notes.append(f"already {mnist.MNIST_SIZE} × {mnist.MNIST_SIZE} (MNIST layout): padded to {size} × {size}")
    elif (h, w) == (size, size):
        out = ink.astype(np.float32)
        notes.append(f"already {size} × {size}: used as drawn")
    else:
        out, how = _place_in_square(ink, size)
        notes.append(how)
    out = (out * mnist.disc_mask(size)).astype(np.float32)
    return LoadedImage(out, "; ".join(notes))


class ImageReader(InputReader):
    """Digit images (PNG / JPEG; see :func:`load_image`), inputs (A, 1, 29, 29) of the images family."""

    family = "images"
    noun = "images"
    file_types = ("png", "jpg", "jpeg")
    file_label = "Digit images (PNG / JPEG, one digit each)"
    help = ("Your digits are encoded by the selected model and drawn on both maps as diamonds. Any "
            "size, colour or transparency: composited over white, made white-on-black, resized into "
            "the MNIST layout and padded to 29 × 29.")

    def read(self, entry, files: list[tuple[str, bytes]], typed: str = "") -> UserInputs:
        """Per-image results and the accepted images (see :class:`UserInputs`); ``typed`` is unused.

        Raises
        ------
        InputFileError
            For no files or more than :data:`MAX_IMAGES`.
        """
        if not files:
            raise InputFileError("no image uploaded")
        if len(files) > MAX_IMAGES:
            raise InputFileError(f"{len(files)} images; at most {MAX_IMAGES} can be encoded at once")
        records, images, labels = [], [], []
        for name, data in files:
            rec = {"source": name, "name": name.rsplit("/", 1)[-1], "input": f"{len(data):,} bytes"}
            try:
                loaded = load_image(data, name)
            except ImageInputError as exc:
                category = "no ink found" if isinstance(exc, BlankImageError) else (
                    "too large" if isinstance(exc, ImageTooLargeError) else "not an image")
                message = str(exc).removeprefix(f"{name}: ")
                rec.update(status="rejected", reason=message if message.startswith(category)
                           else f"{category}: {message}")
            else:
                rec.update(status="parsed", note=loaded.note)
                images.append(loaded.image)
                labels.append(rec["name"])
            records.append(rec)
        return UserInputs(
            model_id=entry.id, family=self.family, table=_table(records),
            inputs=np.stack(images)[:, None].astype(np.float32) if images else None,
            rows=np.full(len(images), -1, dtype=np.int64), labels=tuple(labels),
            values=pd.DataFrame(index=range(len(images))), digest=digest_of(entry.id, files, typed))


#: domain family -> reader
READERS: dict[str, InputReader] = {"molecules": MoleculeReader(), "images": ImageReader()}


def reader_for(entry) -> InputReader | None:
    """The reader for ``entry``'s domain family, or None when its inputs cannot be uploaded
    (codes-only and synthetic entries, families without a reader)."""
    if getattr(entry, "spec", None) is None or not getattr(entry, "has_decoder", False):
        return None
    return READERS.get(getattr(entry, "family", ""))


def read_inputs(entry, files: list[tuple[str, bytes]], typed: str = "") -> UserInputs:
    """Read a user's files and typed text for ``entry`` with its family's reader and keep the
    result (:func:`remember`).

    Parameters
    ----------
    entry : a registry entry (``backend.registry.ModelEntry``) with a spec.
    files : list of (file name, bytes).
    typed : str, typed text (molecules: SMILES).

    Returns
    -------
    UserInputs

    Raises
    ------
    InputFileError
        If the family has no reader, or from the reader for an unreadable upload.
    """
    reader = reader_for(entry)
    if reader is None:
        raise InputFileError(f"{entry.label} takes no uploaded inputs")
    return remember(reader.read(entry, files, typed))


# --------------------------------------------------------------------------- the store
_STORE: "OrderedDict[str, UserInputs]" = OrderedDict()
_STORE_LOCK = threading.Lock()
STORE_SIZE = 64


def remember(inputs: UserInputs) -> UserInputs:
    """Keep ``inputs`` in the process-wide store under its digest (the most recent
    :data:`STORE_SIZE` sets); returns it."""
    with _STORE_LOCK:
        _STORE[inputs.digest] = inputs
        _STORE.move_to_end(inputs.digest)
        while len(_STORE) > STORE_SIZE:
            _STORE.popitem(last=False)
    return inputs


def lookup(digest: str) -> UserInputs:
    """The set kept under ``digest``.

    Raises
    ------
    UnknownInputsError
        If no set with that digest is held (never read, or dropped from the store).
    """
    with _STORE_LOCK:
        found = _STORE.get(digest)
    if found is None:
        raise UnknownInputsError("your uploaded inputs are no longer held by the server; upload them again")
    return found


# --------------------------------------------------------------------------- codes and maps
def presentation(entry, inputs: UserInputs, order: str, seed: int):
    """The input-group elements (A) that re-present the inputs under ``order``: the seeded
    ``random_elements(A, seed)`` for ``"random"`` (as the data set's re-presentation), None for
    ``"stored"`` (inputs as uploaded)."""
    if order != "random" or not len(inputs):
        return None
    return entry.input_action.random_elements(len(inputs), int(seed))


def encode(entry, encoded, order: str, seed: int, inputs: UserInputs, index: int | None = None):
    """Codes of the accepted inputs (all, or the one at ``index``) as the maps show codes.

    An input the data set holds takes its stored code under ``order`` (so it lands on its own
    map point); the others are encoded now, re-presented by :func:`presentation` under
    ``order="random"``.

    Parameters
    ----------
    entry : registry entry of the model the inputs were read for.
    encoded : EncodedDataset of the model's data set (``encoded.codes(order)``).
    order : ``"random"`` or ``"stored"``.
    seed : int, the presentation seed.
    inputs : UserInputs with at least one accepted input.
    index : int, optional, one input only.

    Returns
    -------
    LatentCodes (A, *code_shape), or (1, *code_shape) with ``index``.

    Raises
    ------
    ValueError
        If nothing was accepted or the inputs were read for another model.
    """
    from backend.groups import LatentCodes

    if not len(inputs):
        raise ValueError("no accepted input to encode")
    if inputs.model_id != entry.id:
        raise ValueError(f"these inputs were read for {inputs.model_id}, not {entry.id}")
    pick = np.arange(len(inputs)) if index is None else np.array([int(index)])
    batch = inputs.inputs[pick]
    elements = presentation(entry, inputs, order, seed)
    if elements is not None:
        batch = entry.input_action.act(batch, elements[pick])
    codes = entry.encode_inputs(batch)
    rows = inputs.rows[pick]
    known = rows >= 0
    if not known.any():
        return codes
    stored = encoded.codes(order)[rows[known]]
    values = np.array(codes.values)
    values[known] = stored.values
    mask = None
    if codes.mask is not None:
        mask = np.array(codes.mask)
        mask[known] = stored.mask
    return LatentCodes(values, codes.action, mask)


@dataclass(frozen=True)
class Placement:
    """A user's accepted inputs on both maps.

    Attributes
    ----------
    codes : LatentCodes (A, *code_shape).
    projected : ndarray (A, k), ``s(z)`` under the map's projection.
    raw_xy, inv_xy : ndarray (A, 2), positions on the equivariant and the invariant map (the
        maps' fitted PCA transforms).
    """

    codes: Any
    projected: np.ndarray
    raw_xy: np.ndarray
    inv_xy: np.ndarray


def place(entry, encoded, maps, order: str, projection_key: str, inputs: UserInputs, seed: int = 0,
          proj_seed: int = 0, k: int = 0) -> Placement:
    """Encode the accepted inputs (:func:`encode`) and place them on both maps.

    The projection is fitted on the data set's codes under ``order`` exactly as for the maps
    (:func:`backend.views.projection`, same key, seed and ``k``; its fit is deterministic), and
    positions come from ``maps.raw.transform`` / ``maps.inv.transform``: the maps are not refitted.

    Parameters
    ----------
    entry, encoded, order, inputs, seed : as :func:`encode` (``seed``: presentation seed).
    maps : backend.views.Maps of the current sidebar settings.
    projection_key : str, the maps' projection.
    proj_seed, k : the projection's seed and number of templates (0: its default).

    Returns
    -------
    Placement

    Raises
    ------
    ValueError
        As :func:`encode`.
    """
    from backend import views

    codes = encode(entry, encoded, order, seed, inputs)
    proj = views.projection(projection_key, proj_seed, k).fit(encoded.codes(order))
    projected = np.asarray(proj.transform(codes))
    return Placement(codes, projected, maps.raw.transform(codes.flat()), maps.inv.transform(projected))


def colour_values(inputs: UserInputs, table: pd.DataFrame, option) -> np.ndarray:
    """Display values (A,) of a colour option for the accepted inputs: the data set's value for an
    input the data set holds, else a value known for the input itself (``inputs.values``), else
    missing (NaN for a continuous colour, None for a category), which the maps draw grey.

    Parameters
    ----------
    inputs : UserInputs.
    table : DataFrame, the data set's table (its ``option.key`` column in stored units).
    option : ColorOption (``key``, ``scale``, ``categorical``).

    Returns
    -------
    ndarray (A,): float64 in the option's display unit, or object for a categorical option.
    """
    a = len(inputs)
    out = np.full(a, np.nan) if not option.categorical else np.full(a, None, dtype=object)
    if option.key in inputs.values:
        own = inputs.values[option.key].to_numpy()
        out[:] = own if option.categorical else own.astype(np.float64) * option.scale
    known = inputs.rows >= 0
    if known.any() and option.key in table:
        stored = table[option.key].to_numpy()[inputs.rows[known]]
        out[known] = stored if option.categorical else stored.astype(np.float64) * option.scale
    return out


def add_to_map(fig, inputs: UserInputs, placement: Placement, table: pd.DataFrame, option, which: str):
    """Draw the accepted inputs on one map figure as the highlighted trace ``your inputs``.

    Parameters
    ----------
    fig : plotly Figure of the map (modified and returned).
    inputs : UserInputs; placement : their :class:`Placement`.
    table : DataFrame, the data set's table; option : the map's ColorOption.
    which : ``"raw"`` (equivariant map) or ``"inv"`` (invariant map).

    Returns
    -------
    The figure, with fills from :func:`colour_values` (grey where a value is missing) and a hover
    text per input (its title and colour value).

    Raises
    ------
    ValueError
        If ``which`` is not ``"raw"`` or ``"inv"``.
    """
    from backend import plots

    if which not in ("raw", "inv"):
        raise ValueError(f"which must be 'raw' or 'inv', got {which!r}")
    values = colour_values(inputs, table, option)
    reference, _ = plots.color_column(table, option)
    colours = plots.user_input_colours(values, reference, option)
    hover = []
    for i, v in enumerate(values):
        missing = v is None or (isinstance(v, float) and not np.isfinite(v))
        shown = "no value (grey)" if missing else (f"{v:.4g}" if isinstance(v, float) else str(v))
        hover.append(f"{title(inputs, i)}\n{option.key}: {shown}" + ("" if missing else f" {option.unit}"))
    xy = placement.raw_xy if which == "raw" else placement.inv_xy
    return plots.add_user_inputs(fig, xy, hover, colours)


def endpoint(entry, encoded, order: str, key: tuple, seed: int = 0):
    """An interpolation endpoint from an accepted input: ``key = (digest, index)``.

    Returns
    -------
    (LatentCodes (1, ...), caption str, data-set row or None), as
    :func:`backend.views.endpoint`.

    Raises
    ------
    UnknownInputsError
        If the set is no longer held.
    IndexError
        If ``index`` is not an accepted input.
    """
    digest, index = key
    inputs = lookup(digest)
    index = int(index)
    inputs.item(index)  # IndexError for a bad index
    row = int(inputs.rows[index])
    caption = title(inputs, index)
    return encode(entry, encoded, order, seed, inputs, index), caption, (row if row >= 0 else None)


def title(inputs: UserInputs, index: int) -> str:
    """Caption of accepted input ``index``: ``"your input: ethanol (CCO)"``, with the data-set row
    it matches when there is one."""
    parsed = inputs.table[inputs.table["status"] == "parsed"].iloc[int(index)]
    text = f"your input: {inputs.labels[int(index)]}"
    if parsed["input"] and parsed["input"] != inputs.labels[int(index)] and inputs.family != "images":
        text += f" ({parsed['input']})"
    if parsed["matches"]:
        text += f" = {parsed['matches']}"
    return text


def render(entry, inputs: UserInputs, index: int, element=None, size: tuple[int, int] | None = None) -> str:
    """SVG of accepted input ``index`` as uploaded, or transformed by one input-group ``element``."""
    item = inputs.item(index)
    if element is not None:
        item = entry.input_action.act(item, entry.input_action.as_elements(element))
    return entry.render(item, size)


__all__ = [
    "MAX_ROWS", "MAX_IMAGES", "MAX_IMAGE_BYTES", "MAX_IMAGE_PIXELS", "DIGIT_BOX", "MIN_CONTRAST", "READERS",
    "UserInputError", "InputFileError", "ImageInputError", "NotAnImageError", "ImageTooLargeError",
    "BlankImageError", "UnknownInputsError", "UserInputs", "LoadedImage", "Placement", "InputReader",
    "MoleculeReader", "ImageReader", "digest_of", "smiles_rows", "typed_rows", "rejection", "load_image",
    "reader_for", "read_inputs", "remember", "lookup", "presentation", "encode", "place", "colour_values", "add_to_map",
    "endpoint", "title", "render",
]
