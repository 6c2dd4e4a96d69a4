"""Bring your own molecules and images (``backend/user_inputs.py``): reading SMILES files and
typed SMILES with a reason for every refused row, turning any PNG / JPEG into a rotated-MNIST
input, and placing accepted inputs on both maps, as interpolation endpoints and orbit inputs."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from backend import user_inputs as ui
from backend.data import mnist, qm9


# --------------------------------------------------------------------------- helpers
class _Domain:
    max_nodes = qm9.MAX_NODES


class _Data:
    """A data set holding one molecule (ethanol) at row 0."""

    def rows_of_smiles(self, smiles):
        return np.array([0]) if qm9.canonical_smiles(smiles) == "CCO" else np.empty(0, np.int64)


class _Entry:
    """What MoleculeReader / ImageReader read of a registry entry, without a model."""

    id, label, domain = "stub_model", "stub", _Domain()

    def dataset(self):
        return _Data()

    def describe_row(self, row):
        return {"title": f"QM9 #{row}: CCO"}


def _molecules(text: str, name: str = "mols.smi", typed: str = "") -> ui.UserInputs:
    return ui.MoleculeReader().read(_Entry(), [(name, text.encode())] if text else [], typed)


def _png(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def _digit(h: int = 40, w: int = 30) -> np.ndarray:
    """A white-on-black '7'-like stroke, uint8 (h, w)."""
    a = np.zeros((h, w), np.uint8)
    a[h // 4: h // 4 + 3, w // 4: 3 * w // 4] = 255
    for i in range(h // 4, 3 * h // 4):
        a[i, max(0, 3 * w // 4 - (i - h // 4) // 2): 3 * w // 4 - (i - h // 4) // 2 + 3] = 255
    return a


REFERENCE = ui.load_image(_png(Image.fromarray(_digit())), "ref.png").image


# --------------------------------------------------------------------------- SMILES files
@pytest.mark.parametrize("header", ["smiles,name", "SMILES,Name", "id,Smiles"])
def test_csv_with_a_smiles_column_in_any_case(header):
    first, second = header.split(",")
    rows = [("CCO", "ethanol"), ("c1ccoc1", "furan")]
    body = "\n".join(f"{a},{b}" if first.lower() == "smiles" else f"{b},{a}" for a, b in rows)
    out = _molecules(f"{header}\n{body}\n\n", "mols.csv")
    assert out.table["status"].tolist() == ["parsed", "parsed"]
    assert out.table["line"].tolist() == [2, 3]
    assert out.table["input"].tolist() == ["CCO", "c1ccoc1"]
    assert out.labels == ("ethanol", "furan")
    assert len(out) == 2 and out.inputs.types.shape == (2, qm9.MAX_NODES)


def test_csv_without_a_smiles_column_is_refused_with_its_message():
    with pytest.raises(ui.InputFileError, match="no column named smiles"):
        _molecules("molecule,energy\nCCO,1.0\n", "bad.csv")
    with pytest.raises(ui.InputFileError, match="empty"):
        _molecules("\n\n", "empty.csv")
    with pytest.raises(ui.InputFileError, match="not UTF-8"):
        ui.MoleculeReader().read(_Entry(), [("latin.smi", "CCO \xe9thanol".encode("latin-1"))])
    with pytest.raises(ui.InputFileError, match="no SMILES found"):
        _molecules("# only a comment\n")


def test_smi_with_names_comments_header_and_typed_smiles():
    out = _molecules("smiles name\n# a comment\nCCO  ethanol\n\nc1ccoc1 furan ring\nCC\n",
                     typed="CCN, CCC;\nOCC(O)CO")
    t = out.table
    assert t["source"].tolist() == ["mols.smi"] * 3 + ["typed"] * 3
    assert t["line"].tolist()[:3] == [3, 5, 6]
    assert t["name"].tolist()[:3] == ["ethanol", "furan ring", ""]
    assert t["input"].tolist()[3:] == ["CCN", "CCC", "OCC(O)CO"]
    assert (t["status"] == "parsed").all()
    assert out.labels[2] == "CC"  # no name: its SMILES
    # ethanol is in the (stub) data set: its row and title are recorded
    assert out.rows.tolist() == [0, -1, -1, -1, -1, -1]
    assert t["matches"].iat[0] == "QM9 #0: CCO" and "in the data set" in t["note"].iat[0]


BAD = [  # (SMILES, category, words of the message)
    ("C1CC", "cannot parse", "RDKit cannot parse"),
    ("CCS", "element not in C/N/O/F", "atom S is not supported"),
    ("CC[Na]", "element not in C/N/O/F", "atom Na is not supported"),
    ("CCCCCCCCCC", "more than 9 heavy atoms", "10 heavy atoms"),
    ("C[CH2]", "radical", "unpaired electron"),
    ("CC.O", "disconnected", "2 fragments"),
    ("[2H]C", "isotope label", "isotope labels"),
    ("C[NH3+]", "net charge", "net charge +1"),
]


def test_a_neutral_zwitterion_is_accepted():
    out = _molecules("[NH3+]CC([O-])=O glycine\n")
    assert out.table["status"].tolist() == ["parsed"], out.table["reason"].tolist()


@pytest.mark.parametrize("smiles, category, words", BAD)
def test_each_rejection_class_has_its_reason(smiles, category, words):
    out = _molecules(f"CCO ok\n{smiles} bad\n")
    t = out.table
    assert t["status"].tolist() == ["parsed", "rejected"]
    reason = t["reason"].iat[1]
    assert reason.startswith(category + ": ") and words in reason, reason
    assert out.results_table()["result"].iat[1] == "rejected: " + reason
    assert len(out) == 1 and out.n_rejected == 1 and out.summary() == "1 parsed, 1 rejected"


def test_explicit_hydrogens_and_stereo_are_normalised_before_the_checks():
    out = _molecules("[H]OC([H])([H])C explicit\nC/C=C/C trans\nN[C@@H](C)C(=O)O alanine\n"
                     "[H]/N=C(/C)C#N stereo_h\nCCCCCCCC[H] eight\n")
    t = out.table
    assert (t["status"] == "parsed").all(), t["reason"].tolist()
    assert "explicit [H] folded" in t["note"].iat[0] and t["note"].iat[0].endswith(": CCO")
    assert "stereo removed" in t["note"].iat[1] and "stereo removed" in t["note"].iat[2]
    assert out.rows[0] == 0  # the normalised molecule is found in the data set
    plain = qm9.smiles_to_graph("CCO")
    np.testing.assert_array_equal(np.sort(out.inputs.types[0]), np.sort(plain.types))  # O, C, C in the user's order
    # explicit hydrogens do not count as heavy atoms
    assert out.values["n_atoms"].tolist() == [3, 4, 6, 5, 8]


def test_too_many_rows_are_refused():
    with pytest.raises(ui.InputFileError, match="at most"):
        _molecules("\n".join(["CCO"] * (ui.MAX_ROWS + 1)))


# --------------------------------------------------------------------------- images
def _assert_like_reference(img: np.ndarray, atol: float = 0.06):
    assert img.shape == (29, 29) and img.dtype == np.float32
    assert 0.0 <= img.min() and img.max() <= 1.0
    assert np.abs(img - REFERENCE).mean() < atol, np.abs(img - REFERENCE).mean()


def test_image_made_white_on_black_in_the_mnist_layout():
    out = ui.load_image(_png(Image.fromarray(_digit())), "seven.png")
    img = out.image
    assert not img[~mnist.disc_mask(29)].any()  # zero outside the inscribed disc
    ys, xs = np.nonzero(img > 0.1)
    assert max(ys.max() - ys.min(), xs.max() - xs.min()) + 1 in (ui.DIGIT_BOX, ui.DIGIT_BOX + 1)
    com = np.array([(img.sum(1) @ np.arange(29)), (img.sum(0) @ np.arange(29))]) / img.sum()
    assert np.all(np.abs(com - 14) <= 1.0), com
    assert "padded to 29 × 29" in out.note and "30×40 L" in out.note


def test_black_on_white_is_inverted():
    out = ui.load_image(_png(Image.fromarray(255 - _digit())), "dark_ink.png")
    assert "inverted to white on black" in out.note
    _assert_like_reference(out.image, atol=1e-6)


def test_rgba_with_transparency_is_composited_over_white():
    a = _digit()
    rgba = np.dstack([np.zeros_like(a)] * 3 + [a])  # black ink, transparent elsewhere
    out = ui.load_image(_png(Image.fromarray(rgba, "RGBA")), "alpha.png")
    assert "alpha composited over white" in out.note and "inverted" in out.note
    _assert_like_reference(out.image, atol=1e-6)
    clear = np.dstack([np.full_like(a, 255)] * 3 + [np.zeros_like(a)])
    with pytest.raises(ui.BlankImageError, match="no ink found"):
        ui.load_image(_png(Image.fromarray(clear, "RGBA")), "transparent.png")


def test_16_bit_grey_is_scaled_like_8_bit():
    img16 = Image.fromarray(_digit().astype(np.uint16) * 257)
    assert img16.mode == "I;16"
    out = ui.load_image(_png(img16), "deep.png")
    assert "16-bit grey" in out.note
    _assert_like_reference(out.image, atol=1e-4)
    faint = ui.load_image(_png(Image.fromarray((_digit() // 2).astype(np.uint16) * 257)), "faint.png")
    _assert_like_reference(faint.image, atol=1e-3)  # contrast stretched


def test_palette_image_is_read_through_rgba():
    pal = Image.fromarray(255 - _digit()).convert("P")
    assert pal.mode == "P"
    out = ui.load_image(_png(pal), "palette.png")
    assert "palette" in out.note
    _assert_like_reference(out.image, atol=1e-6)
    # a palette image whose background colour is transparent: composited over white, as drawn
    trans = Image.fromarray(255 - _digit()).convert("P")
    trans.info["transparency"] = int(np.asarray(trans)[0, 0])
    out = ui.load_image(_png(trans), "palette_alpha.png")
    assert "alpha composited over white" in out.note
    _assert_like_reference(out.image, atol=1e-6)


def test_jpeg_is_read():
    out = ui.load_image(_png(Image.fromarray(255 - _digit()).convert("RGB"), "JPEG"), "photo.jpg")
    _assert_like_reference(out.image, atol=0.05)


@pytest.mark.parametrize("size", [(3, 3), (2, 5), (120, 30), (17, 90), (500, 500)])
def test_tiny_and_non_square_images(size):
    h, w = size
    a = np.zeros((h, w), np.uint8)
    a[h // 3: max(h // 3 + 1, 2 * h // 3), w // 3: max(w // 3 + 1, 2 * w // 3)] = 255
    out = ui.load_image(_png(Image.fromarray(a)), "odd.png")
    img = out.image
    assert img.shape == (29, 29) and img.max() > 0.5
    ys, xs = np.nonzero(img > 0.1)
    assert max(ys.max() - ys.min(), xs.max() - xs.min()) + 1 >= ui.DIGIT_BOX - 1  # scaled to the digit box
    com = np.array([(img.sum(1) @ np.arange(29)), (img.sum(0) @ np.arange(29))]) / img.sum()
    assert np.all(np.abs(com - 14) <= 1.0), com
    assert ("enlarged" in out.note) == (max(h, w) < ui.DIGIT_BOX) or max(h, w) == ui.DIGIT_BOX


def test_mnist_sized_images_keep_the_mnist_layout():
    a = np.zeros((28, 28), np.uint8)
    a[5:20, 12:15] = 255
    out = ui.load_image(_png(Image.fromarray(a)), "mnist.png")
    np.testing.assert_allclose(out.image, mnist.pad_mnist(a / 255.0) * mnist.disc_mask(29), atol=1e-6)
    assert "MNIST layout" in out.note


@pytest.mark.parametrize("img", [Image.new("L", (20, 20), 255), Image.new("L", (20, 20), 0),
                                 Image.new("RGB", (8, 30), (120, 120, 120)), Image.new("L", (1, 1), 255)])
def test_blank_images_are_refused(img):
    with pytest.raises(ui.BlankImageError, match="no ink found"):
        ui.load_image(_png(img), "blank.png")


def test_files_that_are_not_images_are_refused():
    with pytest.raises(ui.NotAnImageError, match="not a PNG, JPEG"):
        ui.load_image(b"smiles\nCCO\n", "notes.png")
    with pytest.raises(ui.NotAnImageError, match="empty"):
        ui.load_image(b"", "empty.png")
    with pytest.raises(ui.NotAnImageError, match="cannot read"):
        ui.load_image(_png(Image.fromarray(_digit()))[:60], "truncated.png")


def test_image_reader_table_has_a_row_per_file():
    files = [("seven.png", _png(Image.fromarray(_digit()))), ("blank.png", _png(Image.new("L", (9, 9), 255))),
             ("notes.png", b"hello")]
    out = ui.ImageReader().read(_Entry(), files)
    t = out.results_table()
    assert t["name"].tolist() == ["seven.png", "blank.png", "notes.png"]
    assert t["result"].iat[0].startswith("parsed · 30×40 L")
    assert t["result"].iat[1].startswith("rejected: no ink found")
    assert t["result"].iat[2].startswith("rejected: not an image: cannot read it as an image")
    assert out.inputs.shape == (1, 1, 29, 29) and out.labels == ("seven.png",)
    with pytest.raises(ui.InputFileError, match="no image"):
        ui.ImageReader().read(_Entry(), [])


def test_digest_names_model_files_and_text():
    a = ui.digest_of("m", [("a.smi", b"CCO")], "")
    assert a == ui.digest_of("m", [("a.smi", b"CCO")], "")
    assert len({a, ui.digest_of("n", [("a.smi", b"CCO")]), ui.digest_of("m", [("b.smi", b"CCO")]),
                ui.digest_of("m", [("a.smi", b"CCO")], "C")}) == 4
    with pytest.raises(ui.UnknownInputsError, match="upload them again"):
        ui.lookup("0" * 64)


# --------------------------------------------------------------------------- with a model
def test_molecules_on_both_maps_as_endpoints_and_orbits(tiny_registry):
    import plotly.graph_objects as go

    from backend import views

    entry = tiny_registry
    enc = entry.encode_dataset(0)
    known = str(enc.table["smiles"].iat[7])
    out = ui.read_inputs(entry, [("mine.csv", f"smiles,name\nOCC(O)CO,glycerol\n{known},known\nCCS,thio\n".encode())],
                         typed="C/N=C/OC")
    assert out.summary() == "3 parsed, 1 rejected"
    assert ui.lookup(out.digest) is out
    option = next(c for c in entry.color_options() if c.key == "gap")
    for order in ("random", "stored"):
        maps = views.compute_maps(enc, order, "sort")
        placed = ui.place(entry, enc, maps, order, "sort", out, seed=0)
        assert placed.raw_xy.shape == placed.inv_xy.shape == (3, 2) and np.isfinite(placed.raw_xy).all()
        # the data set's molecule lands on its own points on both maps
        row = int(out.rows[1])
        assert row >= 0 and out.rows[0] == -1
        np.testing.assert_allclose(placed.raw_xy[1], maps.raw.coords[row], atol=1e-4)
        np.testing.assert_allclose(placed.inv_xy[1], maps.inv.coords[row], atol=1e-4)
        for which in ("raw", "inv"):
            fig = ui.add_to_map(go.Figure(), out, placed, enc.table, option, which)
            trace = fig.data[-1]
            assert trace.name == "your inputs" and len(trace.x) == 3 and trace.marker.symbol == "diamond"
            colours = list(trace.marker.color)
            assert colours[0] == colours[2] == "#9e9e9e" and colours[1].startswith("rgb")  # grey: no value
            assert all(c not in ("black", "#000000", "rgb(0, 0, 0)") for c in colours)
            assert set(np.asarray(trace.customdata).tolist()) == {-1}  # map selections ignore them
    # n_atoms is known for every molecule, so no marker is grey under it
    atoms = next(c for c in entry.color_options() if c.key == "n_atoms")
    assert ui.colour_values(out, enc.table, atoms).tolist() == [6, int(enc.table["n_atoms"].iat[row]), 5]
    # an endpoint from an uploaded molecule: its code under the presentation, its caption
    z, caption, r = views.endpoint(entry, enc, "random", upload=(out.digest, 0), seed=3)
    assert z.values.shape == (1,) + tuple(entry.latent_action.code_shape) and r is None
    assert caption.startswith("your input: glycerol")
    np.testing.assert_allclose(z.values, ui.encode(entry, enc, "random", 3, out).values[:1], atol=1e-6)
    _, caption, r = views.endpoint(entry, enc, "stored", upload=(out.digest, 1))
    assert r == row and "QM9 #" in caption
    result = views.interpolate(entry, enc, views.compute_maps(enc, "random", "sort"), "random", "sort",
                               z, views.endpoint(entry, enc, "random", upload=(out.digest, 2))[0], 5)
    assert len(result.raw_decoded) == 5
    # an orbit of an uploaded molecule: relabelling its atoms leaves the sorted code where it was
    maps = views.compute_maps(enc, "random", "sort")
    orb = views.orbit_view(entry, maps, enc, "random", "sort", None, entry.input_action.orbit_elements(6),
                           inputs=out.item(0))
    assert orb.codes.values.shape[0] == 6 and orb.invariance_error < 1e-4
    assert "<svg" in ui.render(entry, out, 0, entry.input_action.orbit_elements(2)[1], (120, 100))


def test_images_on_both_maps_and_orbits(tiny_rot_registry):
    from backend import views

    entry = tiny_rot_registry
    enc = entry.encode_dataset(0)
    files = [("seven.png", _png(Image.fromarray(_digit()))), ("blank.png", _png(Image.new("L", (9, 9), 0)))]
    out = ui.read_inputs(entry, files)
    assert out.summary() == "1 parsed, 1 rejected"
    maps = views.compute_maps(enc, "random", "orbit_alignment")
    placed = ui.place(entry, enc, maps, "random", "orbit_alignment", out, seed=0)
    assert placed.raw_xy.shape == (1, 2) and np.isfinite(placed.inv_xy).all()
    option = next(c for c in entry.color_options() if c.key == "label")
    assert ui.colour_values(out, enc.table, option).tolist() == [None]  # no digit label: grey
    z, caption, r = views.endpoint(entry, enc, "random", upload=(out.digest, 0))
    assert caption == "your input: seven.png" and r is None
    orb = views.orbit_view(entry, maps, enc, "random", "orbit_alignment", None,
                           entry.input_action.orbit_elements(8), inputs=out.item(0))
    assert orb.raw_xy.shape == (8, 2)
    assert "<svg" in ui.render(entry, out, 0)
    assert isinstance(out.table, pd.DataFrame) and out.table["status"].tolist() == ["parsed", "rejected"]
