"""Codes-only mode in a real browser: upload an .npz through the sidebar's "Your own codes",
see both maps with every code, select one by a click, download the export (CSV, Parquet,
features, HTML figure), see the distortion and probe tables on Downstream and the Orbits page
say it needs a model; a bad file gets its message in the sidebar and the app keeps running.

The upload lives in the browser session, so the test moves between pages with the app's own
navigation links (a ``page.goto`` would open a new session without the upload)."""

from __future__ import annotations

import csv
import io

import numpy as np
import pandas as pd

from tests.e2e import driver as d

M = 240


def _points_per_chart(page) -> list[int]:
    return d.points_per_chart(page)  # st.plotly_chart's and the map component's charts


def _upload(page, path) -> None:
    uploader = page.locator('[data-testid="stSidebar"] [data-testid="stFileUploader"]').first
    uploader.locator('input[type="file"]').set_input_files(str(path))
    page.get_by_text(path.name).first.wait_for(timeout=30_000)  # listed under the uploader
    d.wait_idle(page)
    page.get_by_role("button", name="Show these codes").click()
    d.wait_idle(page)


def _go(page, title: str) -> None:
    page.locator('[data-testid="stSidebarNav"]').get_by_text(title, exact=True).click()
    d.wait_idle(page)


def test_uploaded_codes_show_both_maps_export_and_distortion(page, app_url, tmp_path, artifacts):
    rng = np.random.default_rng(0)
    bad = tmp_path / "bad_codes.npz"
    np.savez(bad, codes=rng.normal(size=(M, 4, 6)), action="C_8")  # N = 6, declared C_8
    good = tmp_path / "my_codes.npz"
    np.savez(good, codes=rng.normal(size=(M, 4, 8)).astype(np.float32), action="C_8",
             digit=rng.integers(0, 4, M), energy=rng.normal(size=M))

    d.open_page(page, app_url)
    page.locator('[data-testid="stSidebar"] [data-testid="stExpander"] summary').filter(
        has_text="Your own codes").click()
    _upload(page, bad)
    page.get_by_text("the declared action C_8 shifts a fibre of length 8, but the codes have N = 6").first.wait_for(
        timeout=30_000)
    d.assert_no_exception(page)

    _upload(page, good)  # replaces the file in the (single-file) uploader
    page.get_by_text(f"Loaded {M} codes (C_8)").first.wait_for(timeout=30_000)
    assert "Your codes · my_codes.npz" in page.locator('[data-testid="stSidebar"]').inner_text()

    _go(page, "Latent maps")
    page.get_by_text("Invariant view: PCA of orbit alignment").first.wait_for(timeout=120_000)
    d.wait_idle(page)
    d.assert_no_exception(page)
    assert "Equivariant view: PCA of the raw codes" in page.inner_text("body")
    assert _points_per_chart(page) == [M, M]
    # a click selects one code: the selection CSV lists that row with its label
    chart = d.chart_index_by_title(page, "Equivariant view")
    pts = np.array(d.map_points(page, chart))
    left, top, w, h = d.plot_area(page, chart)
    inside = pts[(pts[:, 0] > left + 8) & (pts[:, 0] < left + w - 8) & (pts[:, 1] > top + 8) & (pts[:, 1] < top + h - 8)]
    gaps = np.sqrt(((inside[:, None, :2] - pts[None, :, :2]) ** 2).sum(-1))
    gaps[gaps == 0] = np.inf
    x, y, row = inside[np.argmax(gaps.min(1))]
    page.mouse.click(x, y)
    page.get_by_text("Selection: 1 code").first.wait_for(timeout=60_000)
    d.wait_idle(page)
    with page.expect_download() as info:
        page.get_by_role("button", name="Download the selection").click()
    picked = list(csv.DictReader(io.StringIO(open(info.value.path(), encoding="utf-8").read())))
    assert [int(r["row"]) for r in picked] == [int(row)] and picked[0]["code_id"] == str(int(row))
    assert "digit [category]" in picked[0]
    d.assert_no_exception(page)
    page.screenshot(path=str(artifacts / "codes_upload_latent_maps.png"), full_page=True)

    page.locator('[data-testid="stExpander"] summary').filter(has_text="Export").click()
    with page.expect_download() as info:
        page.get_by_role("button", name="Maps · CSV").click()
    name = info.value.suggested_filename  # every setting behind the numbers is in the name
    assert name.endswith("_maps.csv") and name.count("-seed") == 2, name
    rows = list(csv.DictReader(io.StringIO(open(info.value.path(), encoding="utf-8").read())))
    assert len(rows) == M and [int(r["row"]) for r in rows] == list(range(M))
    assert {"code_id", "raw_pc1", "raw_pc2", "inv_pc1", "inv_pc2", "digit", "energy"} <= set(rows[0])
    with page.expect_download() as info:
        page.get_by_role("button", name="Maps · Parquet").click()
    table = pd.read_parquet(info.value.path())
    assert table["row"].tolist() == list(range(M))
    np.testing.assert_allclose(table["inv_pc1"], [float(r["inv_pc1"]) for r in rows], rtol=1e-5, atol=1e-6)
    with page.expect_download() as info:
        page.get_by_role("button", name="Features · npz").click()
    with np.load(info.value.path(), allow_pickle=False) as z:
        assert z["features"].shape == (M, 4 * 8) and str(z["projection"]) == "orbit_alignment"
    with page.expect_download() as info:
        page.get_by_role("button", name="Projected map · HTML").click()
    html = open(info.value.path(), encoding="utf-8").read()
    assert "Invariant view: PCA of orbit alignment" in html and len(html) > 3_000_000

    _go(page, "Downstream")
    page.get_by_text("How much each projection keeps").first.wait_for(timeout=120_000)
    page.get_by_text("Probes for your labels").first.wait_for(timeout=120_000)
    d.wait_idle(page)
    d.assert_no_exception(page)
    assert page.locator('[data-testid="stDataFrame"]').count() == 2  # distortion and probes
    page.screenshot(path=str(artifacts / "codes_upload_downstream.png"), full_page=True)

    _go(page, "Orbits")
    page.get_by_text("needs a model with inputs and an encoder").first.wait_for(timeout=60_000)
    d.assert_no_exception(page)
