"""Every interaction the pages offer, in a real browser (Chromium via Playwright).

AppTest cannot see what a browser sends: a lasso crashed the page and a click selected
nothing while every AppTest passed. These tests click, lasso, drag sliders and switch
widgets against ``streamlit run app.py`` (shipped weights, small data) and compare what the
page shows with the figure's own data.
"""

from __future__ import annotations

import csv
import io
import math
import time
import urllib.parse

import numpy as np
import pytest

from tests.e2e import driver as d

MODELS = ["graph_vae_qm9", "rot_mnist_c8", "rot_mnist_cnn_aug"]
ID_COL = {"graph_vae_qm9": "qm9_index", "rot_mnist_c8": "image_index", "rot_mnist_cnn_aug": "image_index"}
#: title of the left-hand map: "equivariant" only for models with a latent group action
RAW_TITLE = {"rot_mnist_cnn_aug": "PCA of the raw codes"}


def all_points(page, chart: int) -> np.ndarray:
    """(P, 3) array of screen x, y and row id of every data point of a map (all traces with
    non-negative row ids, and the points the map component draws itself)."""
    arr = np.array(d.map_points(page, chart), dtype=np.float64)
    return arr[arr[:, 2] >= 0]


def download_selection(page) -> list[dict]:
    """Rows of the selection CSV offered by the Latent maps page."""
    with page.expect_download() as info:
        page.locator('[data-testid="stDownloadButton"] button').first.click()
    text = open(info.value.path(), encoding="utf-8").read()
    return list(csv.DictReader(io.StringIO(text)))


def wait_for_text(page, text: str, timeout: float = 60.0) -> None:
    page.get_by_text(text).first.wait_for(timeout=timeout * 1000)


def isolated_point(pts: np.ndarray, area) -> np.ndarray:
    """The point farthest from all others (in pixels), inside the plotting area with a margin."""
    left, top, w, h = area
    ok = (pts[:, 0] > left + 8) & (pts[:, 0] < left + w - 8) & (pts[:, 1] > top + 8) & (pts[:, 1] < top + h - 8)
    cand = pts[ok]
    dist = np.sqrt(((cand[:, None, :2] - pts[None, :, :2]) ** 2).sum(-1))
    dist[dist == 0] = np.inf
    return cand[np.argmax(dist.min(1))]


@pytest.mark.parametrize("model", MODELS)
def test_click_selects_that_point_and_shows_it(page, app_url, model):
    d.open_page(page, app_url, "latent_maps", model=model)
    d.assert_no_exception(page)
    chart = d.chart_index_by_title(page, RAW_TITLE.get(model, "Equivariant view"))
    assert chart >= 0
    pts = all_points(page, chart)
    x, y, row = isolated_point(pts, d.plot_area(page, chart))
    page.mouse.click(x, y)
    wait_for_text(page, "Selection: 1 ")
    d.wait_idle(page)
    rows = download_selection(page)
    assert [int(r["row"]) for r in rows] == [int(row)]
    # the preview shows that row (its caption names the row and the data set's id)
    page.get_by_text(f"row {int(row)} · ").first.wait_for(timeout=10_000)
    assert f"#{rows[0][ID_COL[model]]}:" in page.inner_text("body")
    d.assert_no_exception(page)


@pytest.mark.parametrize("model", MODELS)
def test_lasso_selects_exactly_the_enclosed_rows_and_offers_them_as_endpoints(page, app_url, model):
    d.open_page(page, app_url, "latent_maps", model=model)
    chart = d.chart_index_by_title(page, RAW_TITLE.get(model, "Equivariant view"))
    pts = all_points(page, chart)
    left, top, w, h = d.plot_area(page, chart)
    cx, cy = np.median(pts[:, 0]), np.median(pts[:, 1])
    r = 0.18 * min(w, h)
    poly = [(cx + r * math.cos(a), cy + 0.8 * r * math.sin(a)) for a in np.linspace(0, 2 * np.pi, 9)[:-1]]
    poly.append(poly[0])
    inside = {int(p[2]) for p in pts if d.inside_polygon(p[0], p[1], poly)}
    # points within 2 px of the lasso's edge may fall either way (mouse positions are pixels)
    edge = set()
    for p in pts:
        for (x1, y1), (x2, y2) in zip(poly[:-1], poly[1:]):
            t = np.clip(((p[0] - x1) * (x2 - x1) + (p[1] - y1) * (y2 - y1)) / ((x2 - x1) ** 2 + (y2 - y1) ** 2), 0, 1)
            if math.hypot(p[0] - x1 - t * (x2 - x1), p[1] - y1 - t * (y2 - y1)) < 2.0:
                edge.add(int(p[2]))
    assert len(inside) >= 3
    d.choose_tool(page, chart, "lasso")
    d.draw_path(page, poly)
    wait_for_text(page, "Selection: ")
    d.wait_idle(page)
    d.assert_no_exception(page)
    got = {int(row["row"]) for row in download_selection(page)}
    assert inside - edge <= got <= inside | edge, (sorted(inside ^ got)[:20], len(inside), len(got))
    ids = {int(row["row"]): row[ID_COL[model]] for row in download_selection(page)}

    # the selection is offered as interpolation endpoints
    d.goto_nav(page, "Interpolation")
    d.assert_no_exception(page)
    noun = "Molecule" if model == "graph_vae_qm9" else "Image"
    d.click_radio(page, f"{noun} A", "map selection")
    d.click_radio(page, f"{noun} B", "map selection")
    body = page.inner_text("body")
    first, second = sorted(got)[:2]
    assert f"#{ids[first]}:" in body and f"#{ids[second]}:" in body
    d.assert_no_exception(page)


@pytest.mark.parametrize("model", MODELS)
def test_step_slider_draws_the_new_step_without_touching_the_maps(page, app_url, model):
    d.open_page(page, app_url, "interpolation", model=model)
    d.assert_no_exception(page)
    wait_for_text(page, "step 4 · ")
    n_charts = d.charts(page).count()
    page.evaluate("() => { window._elxData = [...document.querySelectorAll('[data-testid=\"stPlotlyChart\"] "
                  ".js-plotly-plot')].map(g => g.data); }")
    slider = page.locator('[data-testid="stSlider"]').filter(has_text="Step along the path").locator('input[type="range"]')
    watch = d.watch(page)
    before = watch.ws_bytes
    slider.focus()
    page.keyboard.press("ArrowRight")
    wait_for_text(page, "step 5 · ")
    d.wait_idle(page)
    sent = watch.ws_bytes - before
    same = page.evaluate("() => [...document.querySelectorAll('[data-testid=\"stPlotlyChart\"] .js-plotly-plot')]"
                         ".map((g, i) => g.data === window._elxData[i])")
    assert d.charts(page).count() == n_charts
    # the big maps (the last charts: two, or one for a model without a latent action, whose
    # identity map would repeat the raw one) keep their data objects: not re-sent, not redrawn
    k = 1 if model in RAW_TITLE else 2
    assert len(same) >= k and same[-k:] == [True] * k, same
    # the small path figure (an SVG) shows the new step's star
    assert page.locator("figcaption").filter(has_text="step 5 · ").count() >= 1
    assert sent < 400_000, sent
    d.assert_no_exception(page)


def test_every_interpolation_step_draws_a_valid_molecule_next_to_the_models_own_decode(page, app_url):
    """QM9, a random pair: at each of the 9 steps both paths show the model's own (argmax) decode
    and the constrained decode, and the constrained one is a drawn, valid molecule."""
    d.open_page(page, app_url, "interpolation", model="graph_vae_qm9", pair_seed=2)
    d.assert_no_exception(page)
    wait_for_text(page, "step 4 · ")
    slider = page.locator('[data-testid="stSlider"]').filter(has_text="Step along the path").locator('input[type="range"]')
    slider.focus()
    page.keyboard.press("Home")
    for step in range(9):
        if step:
            page.keyboard.press("ArrowRight")
        wait_for_text(page, f"step {step} · most probable valid molecule")
        d.wait_idle(page)
        own = page.locator("figure").filter(has=page.locator("figcaption", has_text=f"step {step} · model's own decode"))
        best = page.locator("figure").filter(
            has=page.locator("figcaption", has_text=f"step {step} · most probable valid molecule"))
        assert own.count() == 2 and best.count() == 2, (own.count(), best.count())  # raw and invariant path
        for i in range(2):
            caption = best.nth(i).locator("figcaption").inner_text()
            assert caption.rstrip().endswith("valid") and "INVALID" not in caption, caption
            assert best.nth(i).locator("svg path").count() > 0  # a drawn molecule, not an empty box
    d.assert_no_exception(page)


@pytest.mark.parametrize("model", MODELS)
def test_switching_projection_and_colour_redraws_the_maps(page, app_url, model):
    d.open_page(page, app_url, "latent_maps", model=model)
    before = d.combobox(page, "Invariant projection").input_value()
    others = [t for t in d.open_options(page, "Invariant projection") if t != before]
    if not others:  # a single projection (no latent action): nothing to switch
        page.keyboard.press("Escape")
    else:
        d.choose_option(page, "Invariant projection", others[-1])
        assert d.combobox(page, "Invariant projection").input_value() == others[-1]
        assert f"Projection {others[-1]}" in page.inner_text("body")
    d.assert_no_exception(page)
    colours = d.open_options(page, "Colour by")
    assert len(colours) >= 2
    current = d.combobox(page, "Colour by").input_value()
    target = next(c for c in colours if c != current)
    d.choose_option(page, "Colour by", target)
    assert d.combobox(page, "Colour by").input_value() == target
    key = target.split("(")[-1].split(")")[0] if "(" in target else None
    if key:
        assert f"color={key}" in page.url
    d.assert_no_exception(page)


def test_typed_inputs_survive_page_switches_and_live_in_the_url(page, app_url):
    d.open_page(page, app_url, "interpolation", model="graph_vae_qm9")
    d.click_radio(page, "Molecule A", "SMILES")
    d.type_into(page, "SMILES of A", "CCO")
    d.type_into(page, "Random-pair seed", "7")
    assert "text_A=CCO" in page.url and "pair_seed=7" in page.url
    d.goto_nav(page, "Latent maps")
    d.goto_nav(page, "Interpolation")
    assert page.get_by_label("SMILES of A").input_value() == "CCO"
    assert page.get_by_label("Random-pair seed").input_value() == "7"
    query = urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)
    assert query["text_A"] == ["CCO"] and query["pair_seed"] == ["7"]
    d.assert_no_exception(page)

    # a shared link restores the same view in a new session
    fresh = page.context.browser.new_context().new_page()
    try:
        d.open_page(fresh, app_url, "interpolation", model="graph_vae_qm9", src_A="SMILES", text_A="CCO",
                    pair_seed=7)
        assert fresh.get_by_label("SMILES of A").input_value() == "CCO"
        assert fresh.get_by_label("Random-pair seed").input_value() == "7"
    finally:
        fresh.context.close()


def _query(page) -> dict:
    return {k: v[0] for k, v in urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query).items()}


def _history_length(page) -> int:
    return page.evaluate("() => history.length")


def _history_step(page, forward: bool = False) -> None:
    """Press Back (or Forward) once and wait for the rerun it starts."""
    (page.go_forward if forward else page.go_back)()
    time.sleep(1.0)
    d.wait_idle(page)


def test_back_button_leaves_url_and_view_consistent(page, app_url):
    d.open_page(page, app_url, "latent_maps", model="graph_vae_qm9")
    before = d.combobox(page, "Colour by").input_value()
    colours = d.open_options(page, "Colour by")
    target = next(c for c in colours if c != before)
    length = _history_length(page)
    d.choose_option(page, "Colour by", target)
    d.wait_idle(page)
    assert _history_length(page) == length + 1  # one change, one history entry
    changed_url = page.url
    _history_step(page)  # one press undoes the change, in the URL and in the view
    assert d.combobox(page, "Colour by").input_value() == before, (page.url, before)
    assert f"({_query(page)['color']})" in before, (page.url, before)
    _history_step(page, forward=True)  # and Forward redoes it
    assert page.url == changed_url
    assert d.combobox(page, "Colour by").input_value() == target
    d.assert_no_exception(page)


def test_one_page_visit_adds_one_history_entry_and_back_returns_to_the_previous_page(page, app_url):
    """Every URL parameter written separately used to add its own history entry (8 to 13 per page
    visit); then a page switch still added two (Streamlit's bare ``/orbits``, then the run's
    parameters), so the first Back seemed to do nothing. One visit is one entry, one Back."""
    d.open_page(page, app_url, "latent_maps", model="graph_vae_qm9")
    lengths = [_history_length(page)]
    for title in ("Orbits", "Downstream"):
        d.goto_nav(page, title)
        lengths.append(_history_length(page))
    assert [b - a for a, b in zip(lengths, lengths[1:])] == [1, 1], lengths
    for expected in ("/orbits", "/latent_maps"):
        _history_step(page)
        assert urllib.parse.urlparse(page.url).path.endswith(expected), page.url
        assert _query(page)["model"] == "graph_vae_qm9", page.url
    d.assert_no_exception(page)


def test_back_undoes_a_model_switch_and_forward_redoes_it(page, app_url):
    """Back after a model switch used to leave the new model (and its URL) in place: the session's
    state overrode the restored URL and was written over the restored history entry."""
    d.open_page(page, app_url, "latent_maps", model="graph_vae_qm9", color="mu")
    d.goto_nav(page, "Orbits")
    orbits_url, length = page.url, _history_length(page)
    d.click_radio(page, "Model", "Plain CNN")
    page.get_by_text("Rotate the input by").first.wait_for(timeout=120_000)
    d.wait_idle(page)
    switched_url = page.url
    assert _query(page)["model"] == "rot_mnist_cnn_aug" and _history_length(page) == length + 1
    _history_step(page)  # one press: the previous model, on the same page, with its URL
    assert page.url == orbits_url, page.url
    assert _checked(page, "Model") == ["Graph VAE · QM9 molecules (S_n)"]
    assert "(mu)" in d.combobox(page, "Colour by").input_value()
    assert len(_checked(page, "Pick the")) == 1
    _history_step(page, forward=True)
    assert page.url == switched_url, page.url
    assert _checked(page, "Model") == ["Plain CNN + rotation augmentation · rotated MNIST"]
    _history_step(page)
    _history_step(page)  # the page before Orbits, still with the model of that time
    assert urllib.parse.urlparse(page.url).path.endswith("/latent_maps"), page.url
    assert _query(page)["model"] == "graph_vae_qm9"
    assert _checked(page, "Model") == ["Graph VAE · QM9 molecules (S_n)"]
    d.assert_no_exception(page)


def test_step_slider_is_written_to_the_url_and_a_shared_link_opens_on_that_step(page, app_url):
    """The step slider lives in a fragment, whose reruns did not write the URL (``step=4`` stayed
    after moving to 6); each step is one history entry, and Back returns to the previous step."""
    d.open_page(page, app_url, "interpolation", model="rot_mnist_c8")
    wait_for_text(page, "step 4 · ")
    assert _query(page)["step"] == "4"
    slider = page.locator('[data-testid="stSlider"]').filter(has_text="Step along the path") \
        .locator('input[type="range"]')
    length = _history_length(page)
    for step in (5, 6):
        slider.focus()
        page.keyboard.press("ArrowRight")
        wait_for_text(page, f"step {step} · ")
        d.wait_idle(page)
        assert _query(page)["step"] == str(step), page.url
    assert _history_length(page) == length + 2
    shared = page.url
    _history_step(page)
    assert _query(page)["step"] == "5", page.url
    page.locator("figcaption").filter(has_text="step 5 · ").first.wait_for(timeout=30_000)
    d.assert_no_exception(page)

    fresh = page.context.browser.new_context().new_page()  # a new session from the shared link
    try:
        fresh.goto(shared)
        fresh.wait_for_selector('[data-testid="stApp"]', timeout=60_000)
        time.sleep(0.5)
        d.wait_idle(fresh)
        fresh.locator("figcaption").filter(has_text="step 6 · ").first.wait_for(timeout=30_000)
        assert fresh.locator("figcaption").filter(has_text="step 4 · ").count() == 0
        assert _query(fresh)["step"] == "6"
        d.assert_no_exception(fresh)
    finally:
        fresh.context.close()


@pytest.mark.parametrize("path", ["", "latent_maps", "interpolation", "orbits", "downstream"])
def test_every_page_renders_without_errors(page, app_url, path):
    for model in MODELS:
        d.open_page(page, app_url, path, model=model)
        d.assert_no_exception(page)


@pytest.mark.parametrize("model", ["rot_mnist_c8", "rot_mnist_cnn_aug"])
def test_orbit_rotation_slider_rotates_the_input(page, app_url, model):
    d.open_page(page, app_url, "orbits", model=model)
    wait_for_text(page, "input, rotate 45°")
    slider = page.locator('[data-testid="stSlider"]').filter(has_text="Rotate the input by") \
        .locator('input[type="range"]')
    slider.focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    wait_for_text(page, "input, rotate 48°")
    d.wait_idle(page)
    assert ("Movement of the code" if model == "rot_mnist_cnn_aug" else "Invariance error of the projection") \
        in page.inner_text("body")
    d.assert_no_exception(page)


def test_orbit_typed_relabelling_applies_good_text_and_explains_bad_text(page, app_url):
    d.open_page(page, app_url, "orbits", model="graph_vae_qm9")
    d.click_radio(page, "Relabelling shown", "typed")
    label = "Slot order (new slot i takes old slot p[i])"
    d.type_into(page, label, "1 0 2 3 4 5 6 7 8")
    wait_for_text(page, "input, relabel 1 0 2 3 4 5 6 7 8")
    d.type_into(page, label, "9223372036854775808 0 1 2 3 4 5 6 7")
    alert = page.locator('[data-testid="stAlert"]').first
    alert.wait_for(timeout=10_000)
    assert "Traceback" not in page.inner_text("body")
    d.assert_no_exception(page)


def _checked(page, label: str) -> list[str]:
    """Texts of the checked options of the radio group labelled ``label``."""
    group = page.locator('[data-testid="stRadio"]').filter(has_text=label).first
    return [t.strip() for t in group.locator("label:has(input:checked)").all_inner_texts()]


def test_endpoint_sources_stay_selected_across_model_switches(page, app_url):
    """A radio whose options change with the model once showed no option selected after a
    switch; every source radio must show exactly one checked option, the kept one where the
    new model offers it."""
    d.open_page(page, app_url, "interpolation", model="graph_vae_qm9")
    d.click_radio(page, "Molecule A", "SMILES")
    assert _checked(page, "Molecule A") == ["SMILES"]
    d.click_radio(page, "Model", "e2cnn C_N autoencoder")
    page.get_by_text("Image A").first.wait_for(timeout=120_000)
    d.wait_idle(page)
    assert _checked(page, "Image A") == ["random"] and _checked(page, "Image B") == ["random"]
    d.click_radio(page, "Image A", "Image index")
    d.click_radio(page, "Model", "Plain CNN")  # the same options: the choice is kept
    d.wait_idle(page)
    assert _checked(page, "Image A") == ["Image index"]
    d.click_radio(page, "Model", "Graph VAE · QM9 molecules")
    page.get_by_text("Molecule A").first.wait_for(timeout=120_000)
    d.wait_idle(page)
    assert _checked(page, "Molecule A") == ["random"]
    d.goto_nav(page, "Orbits")
    assert len(_checked(page, "Pick the")) == 1
    d.assert_no_exception(page)


def _highlight_at(page, chart: int, row: int, timeout: float = 60.0) -> list:
    """Wait until ``chart`` rings exactly ``row`` (at that row's point) and dims every other point;
    returns the ring's screen position."""
    deadline = time.time() + timeout
    rings, full, want = [], None, None
    while time.time() < deadline:
        pts = all_points(page, chart)
        want = pts[pts[:, 2] == row][0, :2]
        rings, full = d.selection_rings(page, chart), d.full_colour_rows(page, chart)
        if len(rings) == 1 and full == [row]:
            break
        time.sleep(0.3)
    assert len(rings) == 1, (chart, rings)
    assert math.dist(rings[0], want) < 1.0, (chart, rings[0], want.tolist())
    assert full == [row], (chart, full)  # the map component draws the row at full colour, the rest dimmed
    return rings[0]


def test_a_clicked_point_is_highlighted_on_both_maps_also_after_a_projection_change(page, app_url, artifacts):
    """A click marks its point on BOTH big maps (a ring at the row's coordinates, the other
    points dimmed), not only in the small selection overview; a projection change keeps it
    marked where the row now lies."""
    d.open_page(page, app_url, "latent_maps", model="graph_vae_qm9")
    raw = d.chart_index_by_title(page, "Equivariant view")
    inv = raw + 1  # the right-hand map
    assert not d.selection_rings(page, raw) and not d.selection_rings(page, inv)
    assert d.full_colour_rows(page, raw) is None and d.full_colour_rows(page, inv) is None
    x, y, row = isolated_point(all_points(page, raw), d.plot_area(page, raw))
    row = int(row)
    page.mouse.click(x, y)
    wait_for_text(page, "Selection: 1 ")
    d.wait_idle(page)
    assert math.dist(_highlight_at(page, raw, row), (x, y)) < 1.0
    inv_before = _highlight_at(page, inv, row)
    assert "Red rings mark the selected" in page.inner_text("body")
    page.screenshot(path=str(artifacts / "highlight_click_both_maps.png"))

    before = d.combobox(page, "Invariant projection").input_value()
    others = [t for t in d.open_options(page, "Invariant projection") if t != before]
    d.choose_option(page, "Invariant projection", others[-1])
    assert f"Projection {others[-1]}" in page.inner_text("body")
    assert "Selection: 1 " in page.inner_text("body")
    assert math.dist(_highlight_at(page, raw, row), (x, y)) < 1.0  # the same map, the same place
    inv_after = _highlight_at(page, inv, row)  # the same row where the new projection puts it
    assert math.dist(inv_before, inv_after) > 0.5, (inv_before, inv_after)
    d.assert_no_exception(page)
    page.screenshot(path=str(artifacts / "highlight_after_projection_change.png"))


def test_a_selection_on_the_other_map_replaces_the_box(page, app_url):
    """Box on the equivariant map, then lasso on the invariant one: the page's selection is the
    lasso's rows (not lost, not merged with the box's)."""
    d.open_page(page, app_url, "latent_maps", model="graph_vae_qm9")
    raw = d.chart_index_by_title(page, "Equivariant view")
    inv = raw + 1
    for chart, tool in ((raw, "select"), (inv, "lasso")):
        # the download below scrolls the page: bring the map back into view before drawing on it
        page.evaluate(f"(c) => {d.CHARTS_JS}[c].el.scrollIntoView({{block: 'center'}})", chart)
        time.sleep(0.3)
        left, top, w, h = d.plot_area(page, chart)
        cx, cy, r = left + w / 2, top + h / 2, min(w, h) / 4
        corners = [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
        inside = {int(p[2]) for p in all_points(page, chart) if d.inside_polygon(p[0], p[1], corners + [corners[0]])}
        d.choose_tool(page, chart, tool)
        d.draw_path(page, corners if tool == "lasso" else [corners[0], corners[2]])
        wait_for_text(page, "Selection: ")
        d.wait_idle(page)
        rows = {int(row["row"]) for row in download_selection(page)}
        assert rows, tool
    # the lasso's rows (points within a pixel of its edge may fall either way), not merged with the box
    assert len(rows ^ inside) <= 0.02 * len(inside) + 5, (len(rows), len(inside), len(rows - inside),
                                                          len(inside - rows))
    d.assert_no_exception(page)
