"""One test per fault a user found in the dashboard (issue: the dashboard works as people use
it). Each failed before its fix; the browser-side halves are in ``tests/e2e/``."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backend import plots, views

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------- selections
@pytest.mark.parametrize("customdata, row", [
    ({"0": 94, "1": 94}, 94),        # what Streamlit 1.67 sends from a browser (2-D typed array)
    ({"1": 7, "0": 3}, 3),           # keyed by position, in any order
    ([5, 2], 5),                     # a list (Python-side figures)
    ((6,), 6),
    (11, 11),                        # a bare number (lean maps: 1-D customdata)
    ("12", 12),
    (12.0, 12),
])
def test_selected_rows_accepts_every_form_the_browser_sends(customdata, row):
    assert views.selected_rows([{"customdata": customdata}]) == [row]


def test_selected_rows_drops_path_markers_duplicates_and_junk():
    points = [{"customdata": {"0": 0, "1": 1}}, {"customdata": -3}, {"customdata": [4]},
              {"customdata": [4]}, {"x": 1.0}, {"customdata": None}, {"customdata": {}},
              {"customdata": "nan"}, "not a dict"]
    assert views.selected_rows(points) == [0, 4]


# ----------------------------------------------------------------- map figures
def _table(n=50):
    rng = np.random.default_rng(0)
    return pd.DataFrame({"gap": rng.random(n), "digit": rng.integers(0, 10, n)})


def _option(key, categorical):
    from backend.registry import ColorOption

    return ColorOption(key, key, "eV" if key == "gap" else "class", categorical=categorical)


@pytest.mark.parametrize("key, categorical", [("gap", False), ("digit", True)])
def test_map_lets_a_click_select_and_keeps_title_and_legend_clear(key, categorical):
    fig = plots.latent_map(np.zeros((50, 2)), _table(), _option(key, categorical))
    # a forced lasso/box drag mode makes Streamlit set clickmode="event": clicks select nothing
    assert fig.layout.dragmode is None
    # the title is written above the chart by the page, where the toolbar cannot cover it
    assert fig.layout.title.text is None
    # the legend never sits over the colour bar's title: below the plot when there is a colour
    # bar, on the right (Plotly's default place) when there is none
    if categorical:
        assert not any(getattr(t.marker, "showscale", False) for t in fig.data)
    else:
        assert fig.data[0].marker.showscale
        assert fig.layout.legend.orientation == "h" and fig.layout.legend.y <= -0.2
    for trace in fig.data:
        assert np.asarray(trace.customdata).ndim == 1  # one row id per point
        assert trace.text is None  # no per-point strings
        assert np.asarray(trace.x).dtype == np.float32


def test_lean_map_is_small():
    import plotly.io as pio

    def size(n):
        fig = plots.latent_map(np.random.default_rng(0).normal(size=(n, 2)), _table(n), _option("gap", False))
        return len(pio.to_json(fig, validate=False))

    per_point = (size(40_000) - size(20_000)) / 20_000
    # bytes per point: 4 typed 4-byte arrays in base64 (21.3) plus Plotly's HTML-safe escaping
    # of "/" as \u002f; was 54 with SMILES hover texts and float64
    assert per_point < 28


def test_categorical_colours_are_all_visible_on_white():
    def luminance(hex_colour):
        r, g, b = (int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    colours = plots.categorical_palette(10)
    assert len(set(colours)) == 10
    assert max(luminance(c) for c in colours) < 0.75  # digit 9 was #FECB52, luminance 0.82


# ----------------------------------------------------------------- honest labels
def _encoded(action, stored, random):
    from backend.groups import LatentCodes
    from backend.latents import EncodedDataset

    table = pd.DataFrame({"i": np.arange(len(stored))})
    return EncodedDataset(table, LatentCodes(stored, action), LatentCodes(random, action),
                          np.zeros(len(stored), dtype=np.int64), 0, Path("x"))


def test_identity_on_a_model_without_latent_action_is_not_called_invariant():
    import importlib

    from backend.groups import TrivialAction

    common = importlib.import_module("app_pages._common")
    rng = np.random.default_rng(0)
    stored = rng.normal(size=(200, 8, 1)).astype(np.float32)
    moved = stored + rng.normal(size=stored.shape).astype(np.float32)  # rotating the input moves the code
    maps = views.compute_maps(_encoded(TrivialAction(8), stored, moved), "random", "identity")
    assert maps.trivial_action and not maps.measured_invariant
    assert maps.invariance_rel_median > 0.1
    spec = type("Spec", (), {"label": "None (no latent group action)"})()
    assert "Invariant view" not in common.map_title(maps, spec, "inv")
    text = common.tag_badges(maps)
    assert "No latent group action" in text and "% (median)" in text
    said = common.invariance_text(maps)  # no claim about a projection that does not exist
    assert "exactly invariant" not in said and "no latent group action" in said


def test_invariance_error_is_relative_to_the_typical_distance():
    from backend.groups import PermutationAction

    rng = np.random.default_rng(1)
    act = PermutationAction(5, 1)
    stored = rng.normal(size=(300, 5, 1)).astype(np.float32)
    perms = np.argsort(rng.random((300, 5)), axis=1)
    random = np.take_along_axis(stored, perms[:, :, None], axis=1)
    maps = views.compute_maps(_encoded(act, stored, random), "random", "sort")
    assert maps.measured_invariant and maps.invariance_rel_max < 1e-5
    assert maps.typical_distance == pytest.approx(views.typical_distance(maps.projected))
    # a lossy one-feature map says so in its title
    pooled = views.compute_maps(_encoded(act, stored, random), "random", "max_pool")
    import importlib

    common = importlib.import_module("app_pages._common")
    spec = type("Spec", (), {"label": "Max pooling"})()
    assert "one feature" in common.map_title(pooled, spec, "inv")


def test_no_emoji_in_what_pages_show():
    """Yes/no and icons must render without an emoji font (Material icons ship with Streamlit)."""
    emoji = re.compile("[\U0001F300-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF]")
    for path in [ROOT / "app.py", *sorted((ROOT / "app_pages").glob("*.py")), ROOT / "backend" / "registry.py",
                 ROOT / "backend" / "plots.py"]:
        found = emoji.findall(path.read_text(encoding="utf-8"))
        assert not found, (path.name, found)


# ----------------------------------------------------------------- expensive settings
def test_random_template_k_is_capped_and_priced():
    import importlib

    common = importlib.import_module("app_pages._common")
    assert common.K_LIMIT["sorted_coorbits"] <= 1024 and common.K_LIMIT["max_filtering"] <= 4096
    # k = 512 sorted coorbits on 5,000 MNIST codes (16, 8) took 154 s before; now priced
    secs = common.expected_fit_seconds("sorted_coorbits", 512, 5000, (16, 8))
    assert 1 < secs < 60
    assert common.expected_fit_seconds("sort", 0, 5000, (9, 1)) is None


def test_wide_pca_maps_use_the_randomized_solver_and_agree_with_the_exact_one():
    from sklearn.decomposition import PCA

    from backend.embedding import pca_map

    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(600, 3)))[0].T  # three directions, variances 100, 25, 4
    x = rng.normal(size=(400, 3)) * [10, 5, 2] @ basis + 0.1 * rng.normal(size=(400, 600))
    m = pca_map(x)
    exact = PCA(2, svd_solver="full").fit(x)
    assert np.allclose(np.abs(m.components @ exact.components_.T), np.eye(2), atol=1e-6)


def test_a_new_presentation_seed_reuses_the_cached_codes(tiny_registry):
    entry = tiny_registry
    enc0 = entry.encode_dataset(0)
    files = set(enc0.cache_path.parent.glob("latents_*"))
    enc3 = entry.encode_dataset(3)
    assert set(enc0.cache_path.parent.glob("latents_*")) == files  # nothing re-encoded or written
    assert entry.equivariance_checks[3] < 1e-4  # checked on a sample first
    # the reused codes are the codes of the relabelled molecules, encoded for real
    g = entry.dataset()
    rows = np.arange(5)
    p = enc3.perms[rows]
    types = np.take_along_axis(g.types[rows], p, axis=1)
    tie = np.take_along_axis(g.tiebreak[rows], p, axis=1)
    bonds = g.bonds[rows][np.arange(5)[:, None, None], p[:, :, None], p[:, None, :]]
    assert np.allclose(entry._encode_arrays(types, bonds, tie), enc3.random.values[rows], atol=1e-5)
    # ... and the maps say so: the movement of seed 3 measures the projection alone
    assert enc0.latent_acted_check is None
    assert enc3.latent_acted_check == entry.equivariance_checks[3]
    import importlib

    common = importlib.import_module("app_pages._common")
    maps3 = views.compute_maps(enc3, "random", "sort", 0)
    assert maps3.latent_acted_check == entry.equivariance_checks[3]
    assert "were not encoded" in common.invariance_text(maps3)
    assert "were not encoded" not in common.invariance_text(views.compute_maps(enc0, "random", "sort", 0))


def test_model_loader_builds_once_under_concurrent_first_calls():
    from backend.registry import _locked_cache

    calls = []

    @_locked_cache(maxsize=1)
    def build():
        calls.append(1)
        time.sleep(0.05)
        return object()

    results = []
    threads = [threading.Thread(target=lambda: results.append(build())) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len({id(r) for r in results}) == 1
    build.cache_clear()
    build()
    assert len(calls) == 2


def test_first_start_progress_says_which_of_the_two_passes_runs():
    import importlib

    common = importlib.import_module("app_pages._common")
    assert common.encoding_progress_label(0.25, "stored node order: encoded 10 / 20").startswith("pass 1 of 2")
    assert common.encoding_progress_label(0.75, "random node order: encoded 10 / 20").startswith("pass 2 of 2")
    assert "100 % overall" in common.encoding_progress_label(1.0, "done")


def test_loading_message_says_first_start_only_when_nothing_is_cached(tmp_path, monkeypatch):
    from backend import registry

    monkeypatch.setenv("ELX_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("ELX_QM9_SUBSET", "50")
    entry = registry.get("graph_vae_qm9")
    assert "first start" in entry.data_loading_message()
    (tmp_path / "qm9_graphs_abc_subset50.npz").write_bytes(b"")
    message = entry.data_loading_message()
    assert "first start" not in message and "cache" in message


def test_selection_table_and_csv_show_colours_in_their_display_unit():
    from backend.registry import ColorOption

    table = pd.DataFrame({"qm9_index": [5, 6, 7], "gap": [0.25, 0.30, 0.35], "split": ["test"] * 3})
    gap = ColorOption("gap", "HOMO-LUMO gap", "eV", scale=27.211386)
    out = views.selection_table(table, [2, 0], ["qm9_index", "gap", "split"], gap)
    assert "gap" not in out.columns and "gap [eV]" in out.columns  # never Hartree under a bare name
    assert np.allclose(out["gap [eV]"], [0.35 * 27.211386, 0.25 * 27.211386])
    assert out["row"].tolist() == [2, 0] and out["qm9_index"].tolist() == [7, 5]


def test_a_map_selection_belongs_to_the_model_it_was_made_on():
    import importlib

    from streamlit.testing.v1 import AppTest

    def script():
        import streamlit as st

        from app_pages import _common

        _common.set_map_selection("rot_mnist_c8", [24, 30, 31])
        st.write(repr(_common.map_selection("graph_vae_qm9")), repr(_common.map_selection("rot_mnist_c8")))

    importlib.import_module("app_pages._common")
    at = AppTest.from_function(script).run()
    assert not at.exception
    assert at.markdown[0].value == "([], 0) ([24, 30, 31], 3)"
