"""Bring your own molecules and images in a real browser: upload a SMILES file and a PNG through
the sidebar's "Your own molecules / images", read the sidebar's short per-row lines and the full
results table under the maps, find the highlighted trace "your inputs" on both maps, and use an
uploaded input as an interpolation endpoint and as an orbit input. The inputs are kept per model:
back on the molecule model they are still there.

The uploads live in the browser session, so the test moves between pages and models with the
app's own navigation (a ``page.goto`` would open a new session without them)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from tests.e2e import driver as d

#: per chart (``st.plotly_chart`` or the map component's Plotly chart in its iframe), in page order:
#: [trace name, number of points, marker symbol] of each trace
TRACES_JS = """() => { const out = [];
  for (const el of document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot, '
                                             + 'iframe[data-testid="stCustomComponentV1"]')) {
    let gd = el;
    if (el.tagName === 'IFRAME') { const doc = el.contentDocument; gd = doc && doc.querySelector('.js-plotly-plot'); }
    if (!gd || !gd._fullData) continue;
    out.push(gd._fullData.map(t => [t.name || '', (t.x || []).length, t.marker ? t.marker.symbol : null]));
  }
  return out; }"""

MOLECULE_LABEL = "Graph VAE · QM9 molecules (S_n)"
IMAGE_LABEL = "e2cnn C_N autoencoder · rotated MNIST"


def _highlighted(page) -> list[list]:
    """The "your inputs" traces of the page's charts, one entry per chart that has one."""
    return [[t for t in chart if t[0] == "your inputs"] for chart in page.evaluate(TRACES_JS)
            if any(t[0] == "your inputs" for t in chart)]


def _wait_for_maps_with_inputs(page, count: int, timeout: float = 180.0) -> list[list]:
    import time

    deadline = time.time() + timeout
    found = []
    while time.time() < deadline:
        found = _highlighted(page)
        if len(found) >= 2:
            return found
        time.sleep(0.5)
    raise AssertionError(f"no highlighted trace on both maps: {found} ({count} inputs expected)")


def _expander(page, title: str):
    exp = page.locator('[data-testid="stSidebar"] [data-testid="stExpander"]').filter(has_text=title).first
    exp.locator("summary").click()
    return exp


def _results_expander(page):
    return page.locator('[data-testid="stMain"] [data-testid="stExpander"]').filter(
        has_text="Your inputs, row by row").first


def _results_table(page) -> str:
    """Text of the full per-row results table (main area, under the maps; opened if closed)."""
    exp = _results_expander(page)
    table = exp.locator('[data-testid="stTable"]')
    if not table.is_visible():
        exp.locator("summary").click()
    table.wait_for(timeout=30_000)
    return table.inner_text()


def _upload(page, expander, path) -> None:
    expander.locator('input[type="file"]').set_input_files(str(path))
    page.get_by_text(path.name).first.wait_for(timeout=30_000)  # listed under the uploader
    d.wait_idle(page)


def test_uploaded_molecules_and_images_on_maps_interpolation_and_orbits(page, app_url, tmp_path, artifacts):
    smi = tmp_path / "my_molecules.smi"
    smi.write_text("smiles name\nCCO ethanol\nOCC(O)CO glycerol\nCCS thioethanol\nCC.O two_parts\n"
                   "[H]OC([H])([H])C explicit_h\n")
    digit = np.zeros((48, 36), np.uint8)
    digit[8:12, 6:30] = 255  # a 7: top bar and a slanted stroke, black on white below
    for i in range(12, 44):
        digit[i, max(0, 28 - (i - 12) // 2): 32 - (i - 12) // 2] = 255
    png = tmp_path / "my_seven.png"
    Image.fromarray(np.dstack([255 - digit] * 3 + [np.full_like(digit, 255)]), "RGBA").save(png)

    d.open_page(page, app_url, "latent_maps", model="graph_vae_qm9")
    d.assert_no_exception(page)
    exp = _expander(page, "Your own molecules")
    _upload(page, exp, smi)
    page.get_by_text("3 parsed, 2 rejected").first.wait_for(timeout=60_000)
    # the sidebar: no table (too narrow), one short readable line per rejected / adjusted row
    assert exp.locator('[data-testid="stTable"], [data-testid="stDataFrame"]').count() == 0
    side = exp.inner_text()
    assert "line 4 · CCS (thioethanol): element not in C/N/O/F: atom S is not supported" in side, side
    assert "line 5 · CC.O (two_parts): disconnected: 'CC.O' has 2 fragments" in side, side
    assert "line 6 · [H]OC([H])([H])C (explicit_h): explicit [H] folded into their atoms: CCO" in side, side
    exp.screenshot(path=str(artifacts / "uploads_molecules_sidebar.png"))
    # the full table: main area, with its input and result columns
    table = _results_table(page)
    _results_expander(page).screenshot(path=str(artifacts / "uploads_molecules_table.png"))
    assert "rejected: element not in C/N/O/F: atom S is not supported" in table
    assert "OCC(O)CO" in table and "CCS" in table
    assert "rejected: disconnected" in table and "2 fragments" in table
    assert "explicit [H] folded into their atoms: CCO" in table
    traces = _wait_for_maps_with_inputs(page, 3)
    assert len(traces) == 2 and all(t[0][1] == 3 and t[0][2] == "diamond" for t in traces), traces
    d.assert_no_exception(page)
    page.screenshot(path=str(artifacts / "uploads_molecules_maps.png"), full_page=True)

    d.goto_nav(page, "Interpolation")
    d.click_radio(page, "Molecule A", "your inputs")
    d.click_radio(page, "Molecule B", "your inputs")
    page.get_by_text("your input: glycerol").first.wait_for(timeout=120_000)
    page.get_by_text("All steps").first.wait_for(timeout=120_000)
    d.wait_idle(page)
    d.assert_no_exception(page)

    # the images model: a PNG (black on white, with an alpha channel)
    d.click_radio(page, "Model", IMAGE_LABEL)
    d.goto_nav(page, "Latent maps")
    exp = _expander(page, "Your own images")
    _upload(page, exp, png)
    page.get_by_text("1 parsed, 0 rejected").first.wait_for(timeout=120_000)
    side = exp.inner_text()
    assert "my_seven.png · " in side and "inverted to white on black" in side, side
    exp.screenshot(path=str(artifacts / "uploads_images_sidebar.png"))
    table = _results_table(page)
    assert "inverted to white on black" in table and "padded to 29 × 29" in table
    traces = _wait_for_maps_with_inputs(page, 1)
    assert len(traces) == 2 and all(t[0][1] == 1 for t in traces), traces
    d.assert_no_exception(page)
    page.screenshot(path=str(artifacts / "uploads_images_maps.png"), full_page=True)

    d.goto_nav(page, "Orbits")
    d.click_radio(page, "Pick the image", "your inputs")
    page.get_by_text("your input as uploaded").first.wait_for(timeout=120_000)
    d.wait_idle(page)
    d.assert_no_exception(page)
    assert "your input: my_seven.png" in page.inner_text("body")
    page.screenshot(path=str(artifacts / "uploads_images_orbit.png"), full_page=True)

    d.goto_nav(page, "Interpolation")
    d.click_radio(page, "Image A", "your inputs")
    page.get_by_text("your input: my_seven.png").first.wait_for(timeout=120_000)
    d.wait_idle(page)
    d.assert_no_exception(page)

    # back on the molecule model: its uploaded molecules are still there (kept per model id)
    d.click_radio(page, "Model", MOLECULE_LABEL)
    d.goto_nav(page, "Orbits")
    d.click_radio(page, "Pick the molecule", "your inputs")
    page.get_by_text("your input as uploaded").first.wait_for(timeout=120_000)
    d.wait_idle(page)
    d.assert_no_exception(page)
    d.goto_nav(page, "Latent maps")
    traces = _wait_for_maps_with_inputs(page, 3)
    assert all(t[0][1] == 3 for t in traces), traces
    d.assert_no_exception(page)
