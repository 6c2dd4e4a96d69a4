"""backend/codes_upload.py: every bad-input class gives its message; good files give codes with
their action, a table, exactly invariant maps, distortion and probe tables; registration and the
command line."""

from __future__ import annotations

import io
import pickle
import zipfile

import numpy as np
import pandas as pd
import pytest

from backend import codes_analysis as ca
from backend import codes_upload as cu
from backend import registry, views
from backend.groups import CyclicShiftAction, PermutationAction, TrivialAction


def npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def npy(array) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


@pytest.fixture()
def rng():
    return np.random.default_rng(7)


@pytest.fixture()
def c8(rng):
    return rng.normal(size=(60, 3, 8)).astype(np.float32)


@pytest.fixture(autouse=True)
def _no_leftover_entries():
    before = dict(registry.MODELS)
    yield
    for key in list(registry.MODELS):
        if key not in before:
            registry.MODELS.pop(key)
    cu._UPLOADED.clear()
    cu._STARTUP.clear()


# ------------------------------------------------------------------ good files
@pytest.mark.parametrize("text, want", [("S_n", ("S", None)), ("S_9", ("S", 9)), ("s9", ("S", 9)),
                                        ("S_{12}", ("S", 12)), ("C_N", ("C", None)), ("c_8", ("C", 8)),
                                        ("none", ("none", None)), ("Trivial", ("none", None))])
def test_parse_action(text, want):
    assert cu.parse_action(text) == want


def test_cn_codes_with_labels_in_the_npz(c8, rng):
    digit = rng.integers(0, 4, 60)
    data = cu.parse_codes(npz(codes=c8, action="C_8", digit=digit, energy=rng.normal(size=60),
                              name=np.array([f"x{i}" for i in range(60)])), "mine.npz")
    assert isinstance(data.codes.action, CyclicShiftAction) and data.codes.action.code_shape == (3, 8)
    assert data.action == "C_8" and len(data) == 60
    assert list(data.table.columns) == ["code_id", "digit", "energy", "code_norm"]
    assert data.table["code_id"].tolist()[:2] == ["x0", "x1"]  # 'name' identifies the codes
    assert data.label_columns == ("digit", "energy")
    np.testing.assert_allclose(data.table["code_norm"], np.linalg.norm(c8.reshape(60, -1), axis=1), rtol=1e-5)
    assert any("'name' identifies" in n for n in data.notes)


def test_sn_codes_with_mask_and_declared_size(rng):
    z = rng.normal(size=(40, 5, 2))
    mask = np.ones((40, 5), bool)
    mask[:, 4] = False
    z[:, 4] = 0.0
    data = cu.parse_codes(npz(codes=z, mask=mask.astype(np.int8)), "s.npz", action="S_5")
    assert isinstance(data.codes.action, PermutationAction) and data.codes.action.code_shape == (5, 2)
    assert data.codes.mask.dtype == bool and data.codes.mask.shape == (40, 5)
    assert not data.notes  # padded slots constant: nothing to say


def test_padded_slots_with_different_values_get_a_note(rng):
    mask = np.ones((10, 4), bool)
    mask[:, 3] = False
    data = cu.parse_codes(npz(codes=rng.normal(size=(10, 4, 1)), mask=mask), "s.npz", action="S_n")
    assert any("padded slots" in n for n in data.notes)


def test_npy_without_action_in_the_file_and_none_action(rng):
    data = cu.parse_codes(npy(rng.normal(size=(30, 7))), "flat.npy", action="none")
    assert isinstance(data.codes.action, TrivialAction) and data.codes.values.shape == (30, 7, 1)
    assert data.action == "none" and data.label_columns == ()


def test_labels_csv_adds_and_replaces_columns(c8):
    csv = "digit,colour\n" + "\n".join(f"{i % 3},{'red' if i % 2 else 'blue'}" for i in range(60))
    data = cu.parse_codes(npz(codes=c8, digit=np.zeros(60)), "m.npz", "C_8", csv.encode(), "l.csv")
    assert data.table["digit"].tolist()[:4] == [0, 1, 2, 0]
    assert set(data.table["colour"]) == {"red", "blue"}
    assert any("replaces" in n for n in data.notes)


def test_same_codes_same_id_other_action_other_id(c8):
    a = cu.parse_codes(npz(codes=c8), "a.npz", "C_8")
    b = cu.parse_codes(npz(codes=c8), "b.npz", "C_n")
    assert a.sha256 == b.sha256  # C_n resolves to C_8: the same declaration
    c = cu.parse_codes(npz(codes=c8.reshape(60, 24)), "c.npz", "none")
    assert c.sha256 != a.sha256


# ------------------------------------------------------------------ bad files, one test per class
BAD = {
    "too large": (lambda c8: npz(codes=c8), dict(action="C_8", limit=1000), r"is [\d.]+ kB, more than the limit of 1.0 kB"),
    "not numpy": (lambda c8: b"hello,world\n1,2\n", dict(action="C_8"), "is not a .npy or .npz file"),
    "corrupt zip": (lambda c8: b"PK\x03\x04" + b"\x00" * 40, dict(action="C_8"), "cannot be read as .npz"),
    "truncated npy": (lambda c8: npy(c8)[:100], dict(action="C_8"), "cannot be read as .npy"),
    "pickled npy": (lambda c8: npy(np.array([{"a": 1}, None], dtype=object)), dict(action="none"),
                    r"holds Python objects \(dtype=object\).*refused \(allow_pickle=False\)"),
    "pickled npz member": (lambda c8: npz(codes=c8, labels=np.array(["a", 1, None] * 20, dtype=object)),
                           dict(action="C_8"), r"array 'labels' of bad.npz holds Python objects"),
    "no codes array": (lambda c8: npz(a=c8, b=c8), dict(action="C_8"), "has no array called 'codes'"),
    "no action": (lambda c8: npz(codes=c8), dict(action=None), "no action declared"),
    "unknown action": (lambda c8: npz(codes=c8), dict(action="SO(3)"), r"unknown action 'SO\(3\)'"),
    "action conflict": (lambda c8: npz(codes=c8, action="S_n"), dict(action="C_8"),
                        "declares the action S_n, but C_8 was chosen"),
    "trivial declared size": (lambda c8: npz(codes=c8), dict(action="C_1"), "acts trivially; declare 'none'"),
    "wrong rank S_n": (lambda c8: npz(codes=c8[:, 0]), dict(action="S_n"),
                       r"have rank 2, but the action S_n needs codes of shape \(M, n, d\), rank 3"),
    "wrong rank none": (lambda c8: npz(codes=c8), dict(action="none"),
                        r"have rank 3, but the action none needs codes of shape \(M, D\)"),
    "non-numeric codes": (lambda c8: npz(codes=np.full((5, 3, 8), "x")), dict(action="C_8"),
                          "must be real numbers"),
    "complex codes": (lambda c8: npz(codes=c8 * 1j), dict(action="C_8"), "must be real numbers"),
    "too few codes": (lambda c8: npz(codes=c8[:1]), dict(action="C_8"), "holds 1 code.*at least 2"),
    "nan": (lambda c8: npz(codes=np.where(np.arange(60)[:, None, None] % 7 == 3, np.nan, c8)),
            dict(action="C_8"), r"9 of 60 codes hold NaN or infinite values \(first: row 3\)"),
    "inf": (lambda c8: npz(codes=np.where(np.arange(60)[:, None, None] == 5, np.inf, c8)),
            dict(action="C_8"), r"1 of 60 codes hold NaN or infinite values \(first: row 5\)"),
    "all zero": (lambda c8: npz(codes=np.zeros_like(c8)), dict(action="C_8"), "all 60 codes are identical"),
    "all equal": (lambda c8: npz(codes=np.broadcast_to(c8[:1], c8.shape).copy()), dict(action="C_8"),
                  "all 60 codes are identical"),
    "overflows float32": (lambda c8: npz(codes=np.where(np.arange(60)[:, None, None] == 2, 1e300, c8.astype(float))),
                          dict(action="C_8"), "too large for float32"),
    "N mismatch": (lambda c8: npz(codes=c8), dict(action="C_6"),
                   r"C_6 shifts a fibre of length 6, but the codes have N = 8"),
    "n mismatch": (lambda c8: npz(codes=c8), dict(action="S_9"), r"S_9 permutes 9 rows, but the codes have n = 3"),
    "n of 1": (lambda c8: npz(codes=c8[:, :1, :].transpose(0, 2, 1)[:, :1]), dict(action="S_n"),
               "n = 1 row per code"),
    "mask for C_N": (lambda c8: npz(codes=c8, mask=np.ones((60, 3), bool)), dict(action="C_8"),
                     "a node mask belongs to S_n codes"),
    "mask shape": (lambda c8: npz(codes=c8, mask=np.ones((60, 4), bool)), dict(action="S_n"),
                   r"the mask has shape \(60, 4\); it must be \(M, n\) = \(60, 3\)"),
    "mask dtype": (lambda c8: npz(codes=c8, mask=np.full((60, 3), 0.5)), dict(action="S_n"),
                   "the mask must be bool"),
    "label length": (lambda c8: npz(codes=c8, digit=np.arange(59)), dict(action="C_8"),
                     "array 'digit' of bad.npz has 59 values but there are 60 codes"),
    "csv rows": (lambda c8: npz(codes=c8), dict(action="C_8", labels=b"y\n" + b"1\n" * 59),
                 "labels.csv has 59 rows but there are 60 codes"),
    "csv empty": (lambda c8: npz(codes=c8), dict(action="C_8", labels=b""), "labels.csv is empty"),
    "csv unparsable": (lambda c8: npz(codes=c8), dict(action="C_8", labels=b'a,b\n1,2\n"3,4\n'),
                       "cannot be read as CSV"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_has_a_clear_message(case, c8):
    make, kwargs, pattern = BAD[case]
    with pytest.raises(cu.CodesFileError, match=pattern) as info:
        cu.parse_codes(make(c8), "bad.npz", **kwargs)
    print(f"{case}: {info.value}")  # what the user reads


def test_unpacked_size_is_checked_before_loading(c8):
    # a small compressed file that unpacks beyond the limit (zip bomb in miniature)
    buf = io.BytesIO()
    np.savez_compressed(buf, codes=np.zeros((2000, 3, 8), np.float32))
    data = buf.getvalue()
    assert len(data) < 20_000
    with pytest.raises(cu.CodesFileError, match="once unpacked, more than the limit"):
        cu.parse_codes(data, "bomb.npz", "C_8", limit=100_000)


def test_size_limit_from_the_environment(monkeypatch, c8):
    monkeypatch.setenv("ELX_CODES_MAX_MB", "0.001")
    assert cu.max_bytes() == 1000
    with pytest.raises(cu.CodesFileError, match="ELX_CODES_MAX_MB"):
        cu.parse_codes(npz(codes=c8), "big.npz", "C_8")
    monkeypatch.setenv("ELX_CODES_MAX_MB", "lots")
    with pytest.raises(cu.CodesFileError, match="positive number of megabytes"):
        cu.max_bytes()
    monkeypatch.delenv("ELX_CODES_MAX_MB")
    assert cu.max_bytes() == cu.DEFAULT_MAX_MB * 10**6


def test_pickle_is_never_executed(tmp_path, c8):
    marker = tmp_path / "pwned"

    class Boom:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    arr = np.empty(1, dtype=object)
    arr[0] = Boom()
    raw = io.BytesIO()
    np.save(raw, arr, allow_pickle=True)
    with pytest.raises(cu.CodesFileError, match="dtype=object"):
        cu.parse_codes(raw.getvalue(), "evil.npy", "none")
    assert not marker.exists()
    assert pickle  # the payload above is what np.save pickled


def test_load_codes_file_checks_size_before_reading(tmp_path, c8):
    path = tmp_path / "c.npz"
    path.write_bytes(npz(codes=c8))
    assert len(cu.load_codes_file(path, "C_8")) == 60
    with pytest.raises(cu.CodesFileError, match="more than the limit"):
        cu.load_codes_file(path, "C_8", limit=100)
    with pytest.raises(cu.CodesFileError, match="cannot read"):
        cu.load_codes_file(tmp_path / "missing.npz", "C_8")


# ------------------------------------------------------------------ entry, maps, analysis
@pytest.mark.parametrize("action, shape", [("C_8", (50, 3, 8)), ("S_n", (50, 6, 1)), ("none", (50, 12))])
def test_entry_gives_invariant_maps_for_every_projection(action, shape, rng):
    data = cu.parse_codes(npz(codes=rng.normal(size=shape), label=rng.integers(0, 3, shape[0])), "x.npz", action)
    entry = cu.register(data)
    assert registry.get(entry.id) is entry and entry.codes_only and not entry.has_decoder
    assert entry.id in registry.available() and entry.id not in registry.unavailable()
    enc = entry.encode_dataset(3)
    assert entry.encoded_cache_path(3).exists()
    np.testing.assert_array_equal(enc.stored.values, data.codes.values)
    for spec in entry.projections():
        maps = views.compute_maps(enc, "random", spec.key, 0, 0)
        assert maps.raw.coords.shape == (shape[0], 2)
        if action == "none":
            assert maps.trivial_action
        else:
            assert maps.measured_invariant, spec.key
            assert maps.invariance_rel_median < 1e-5, spec.key
    keys = [c.key for c in entry.color_options()]
    assert keys == ["label", "code_norm"] and entry.color_options()[0].categorical
    assert "code" in entry.describe_row(0)["title"]
    assert entry.code_figure(data.codes.values[0], None, "raw code") is not None


def test_registration_keeps_few_uploads_and_all_command_line_codes(rng):
    first = cu.register(cu.parse_codes(npz(codes=rng.normal(size=(5, 4))), "cli.npz", "none"), uploaded=False)
    ids = [cu.register(cu.parse_codes(npz(codes=rng.normal(size=(5, 4))), f"u{i}.npz", "none")).id
           for i in range(cu.MAX_UPLOADED + 2)]
    assert first.id in registry.MODELS
    assert [i in registry.MODELS for i in ids] == [False, False] + [True] * cu.MAX_UPLOADED
    again = cu.parse_codes(npz(codes=rng.normal(size=(5, 4))), "cli.npz", "none")
    assert cu.register(again).id != first.id


def test_startup_sources_from_argv_and_environment():
    got = cu.startup_sources(["--server.port", "1", "--codes", "a.npz", "--action", "C_8", "--codes=b.npy",
                              "--labels", "b.csv"], {"ELX_CODES": "c.npz", "ELX_CODES_ACTION": "S_n"})
    assert got == [cu.CodesSource("a.npz", "C_8"), cu.CodesSource("b.npy", None, "b.csv"),
                   cu.CodesSource("c.npz", "S_n")]
    assert cu.startup_sources([], {}) == []


def test_register_startup_reports_errors_and_registers_once(tmp_path, c8):
    good, bad = tmp_path / "good.npz", tmp_path / "bad.npz"
    good.write_bytes(npz(codes=c8, action="C_8"))
    bad.write_bytes(npz(codes=c8))
    out = cu.register_startup(["--codes", str(good), "--codes", str(bad)], {})
    assert out[0][0] and out[0][1] is None and not registry.MODELS[out[0][0]].uploaded
    assert out[1][0] is None and "no action declared" in out[1][1]
    assert cu.register_startup(["--codes", str(good)], {})[0] == out[0]


def test_distortion_table_sorting_is_an_isometry_pooling_is_not(rng):
    data = cu.parse_codes(npz(codes=rng.normal(size=(300, 7, 1))), "s.npz", "S_n")
    dist = ca.distortion_table(data.codes, n_pairs=300, n_queries=20, pool=100).set_index("projection")
    assert list(dist.index) == ["raw", "sort", "channel_sort", "sum_pool", "mean_pool", "max_pool"]
    assert dist.loc["sort", "isometric"] and dist.loc["sort", "decodable"]
    np.testing.assert_allclose(dist.loc["sort", ["ratio_min", "ratio_max"]].astype(float), 1.0, rtol=1e-5)
    assert dist.loc["mean_pool", "distortion"] > 10 and not dist.loc["mean_pool", "lossless"]
    assert dist.loc["raw", "ratio_min"] >= 1 - 1e-6  # raw distance >= quotient distance


def test_probe_table_finds_an_invariant_label(rng):
    # labels that depend on the orbit only (not on the shift): invariant features keep them
    z = rng.normal(size=(400, 2, 8))
    y = (z.mean(axis=(1, 2)) > 0).astype(int)
    energy = z[:, 0].max(axis=-1) - 2 * z[:, 1].max(axis=-1)
    codes = z.copy()
    for i in range(len(codes)):
        codes[i] = np.roll(codes[i], rng.integers(8), axis=-1)
    data = cu.parse_codes(npz(codes=codes, sign=y, energy=energy, tag=np.array(["a"] * 400)), "p.npz", "C_8")
    assert ca.label_tasks(data.table) == {"sign": "classification", "energy": "regression"}
    probes = ca.probe_table(data.codes, data.table)
    wide = ca.wide_probe_table(probes).set_index(["target", "probe"])
    assert wide.loc[("sign", "linear"), "group_mean_pool"] > 0.95
    assert wide.loc[("energy", "linear"), "group_max_pool"] > 0.99  # linear in the max over each fibre
    assert set(probes["metric"]) == {"accuracy", "r2"}
    assert list(wide.columns)[:2] == ["metric", "raw codes"]


def test_probe_table_without_labels_is_empty(rng):
    data = cu.parse_codes(npz(codes=rng.normal(size=(20, 3))), "x.npz", "none")
    assert ca.probe_table(data.codes, data.table).empty
    assert ca.wide_probe_table(ca.probe_table(data.codes, data.table)).empty


def test_npz_member_that_is_not_an_array_is_ignored(c8):
    buf = io.BytesIO(npz(codes=c8, action="C_8"))
    with zipfile.ZipFile(buf, "a") as zf:
        zf.writestr("readme.txt", "hello")
    data = cu.parse_codes(buf.getvalue(), "x.npz")
    assert len(data) == 60 and any("readme" in n for n in data.notes)


def test_colour_options_follow_the_column_kinds(c8, rng):
    table = {"cat_int": rng.integers(0, 3, 60), "many_int": np.arange(60), "real": rng.normal(size=60),
             "text": np.array(["a", "b"] * 30), "ids_text": np.array([f"m{i}" for i in range(60)])}
    data = cu.parse_codes(npz(codes=c8, **table), "x.npz", "C_8")
    opts = {c.key: c.categorical for c in cu.CodesEntry(data).color_options()}
    assert opts == {"cat_int": True, "many_int": False, "real": False, "text": True, "code_norm": False}
    assert isinstance(data.table, pd.DataFrame)
