"""A map of 1,000,000 synthetic codes in a real browser: drawn as a density raster, and a box
selection drawn with the mouse lists exactly the rows the backend finds in that box.

Own server (``ELX_SYNTHETIC_CODES=1000000``); the test process builds the same codes and
maps (seeded) and compares. The box is read from the chart itself
(Plotly's ``plotly_selected`` event, data coordinates), independent of what the page reports.
"""

from __future__ import annotations

import csv
import io
import re

import numpy as np
import pytest

from tests.e2e import driver as d
from tests.e2e.conftest import _browser_or_skip, served_app

pytestmark = pytest.mark.slow
M = 1_000_000


@pytest.fixture(scope="module")
def synthetic_url(tmp_path_factory):
    """The app with the synthetic 1 M-code entry registered, served for this module."""
    _browser_or_skip()
    with served_app(tmp_path_factory.mktemp("e2e_density"), {"ELX_SYNTHETIC_CODES": str(M)}) as url:
        yield url


@pytest.fixture(scope="module")
def inv_coords():
    """The invariant map (sorting, random slot order, seed 0) as the server computes it."""
    from backend import views
    from backend.registry import SyntheticCodesEntry

    maps = views.compute_maps(SyntheticCodesEntry(M).encode_dataset(0), "random", "sort", 0)
    return maps.inv.coords


@pytest.fixture()
def slow_page(page):
    """The shared ``page`` fixture with generous timeouts: a 1 M-code server on a busy 2-core
    machine can take more than Playwright's default 30 s to answer a navigation."""
    page.set_default_timeout(180_000)
    page.set_default_navigation_timeout(180_000)
    return page


def _selection_csv(page) -> list[dict]:
    with page.expect_download() as info:
        page.locator('[data-testid="stDownloadButton"] button').first.click()
    return list(csv.DictReader(io.StringIO(open(info.value.path(), encoding="utf-8").read())))


def test_million_point_map_is_a_raster_and_a_box_selects_exactly_the_rows_inside(slow_page, synthetic_url,
                                                                                 inv_coords):
    page = slow_page
    from backend import density

    d.open_page(page, synthetic_url, "latent_maps", model="synthetic_codes", projection="sort",
                order="random", color="radius")
    d.assert_no_exception(page)
    chart = d.chart_index_by_title(page, "Invariant view")
    assert chart >= 0
    info = page.evaluate(
        """(c) => { const gd = document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot')[c];
        return [gd._fullData[0].type, gd.layout.meta, gd._fullData[0].z.length, gd.layout.dragmode,
                gd._fullLayout.xaxis.title.text]; }""", chart)
    assert info[0] == "heatmap" and info[1]["points"] == M and info[2] == density.RASTER_HEIGHT, info
    assert info[3] == "select" and info[4] == "PC 1", info
    # record the box as Plotly reports it (data coordinates; what Streamlit is sent, too)
    page.evaluate(
        """(c) => { const gd = document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot')[c];
        gd.on('plotly_selected', (e) => { if (e && e.range) window.__elxBox = [...e.range.x, ...e.range.y]; }); }""",
        chart)
    # drag a box over the middle of the plotting area (dragmode is "select")
    left, top, w, h = d.plot_area(page, chart)
    d.draw_path(page, [(left + 0.35 * w, top + 0.30 * h), (left + 0.50 * w, top + 0.45 * h),
                       (left + 0.62 * w, top + 0.66 * h)])
    page.get_by_text("Selection: ").first.wait_for(timeout=120_000)
    d.wait_idle(page)
    d.assert_no_exception(page)
    box = page.evaluate("() => window.__elxBox")
    assert box and len(box) == 4, box
    expected = density.rows_in_box(inv_coords, box[:2], box[2:])
    assert len(expected) > density.SELECTION_DISPLAY_CAP  # a real mass of codes, capped for display
    head = re.search(r"Selection: ([\d,]+) code", page.inner_text("body"))
    assert head and int(head.group(1).replace(",", "")) == len(expected), (head and head.group(0), len(expected))
    rows = _selection_csv(page)
    got = [int(r["row"]) for r in rows]
    assert got == expected[:density.SELECTION_DISPLAY_CAP].tolist()
    # the listed rows lie inside the box on the server's coordinates, too
    xy = np.array([[float(r["inv_pc1"]), float(r["inv_pc2"])] for r in rows])
    assert (xy[:, 0] >= min(box[:2])).all() and (xy[:, 0] <= max(box[:2])).all()
    assert (xy[:, 1] >= min(box[2:])).all() and (xy[:, 1] <= max(box[2:])).all()
    assert "first 1,000 of" in page.inner_text("body")
    d.assert_no_exception(page)


def test_lasso_on_the_raster_selects_exactly_the_rows_inside(slow_page, synthetic_url, inv_coords):
    page = slow_page
    import math

    from backend import density

    d.open_page(page, synthetic_url, "latent_maps", model="synthetic_codes", projection="sort",
                order="random", color="cluster")
    chart = d.chart_index_by_title(page, "Invariant view")
    page.evaluate(
        """(c) => { const gd = document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot')[c];
        gd.on('plotly_selected', (e) => { if (e && e.lassoPoints) window.__elxLasso = e.lassoPoints; }); }""",
        chart)
    left, top, w, h = d.plot_area(page, chart)
    cx, cy, r = left + 0.5 * w, top + 0.5 * h, 0.2 * min(w, h)
    poly = [(cx + r * math.cos(a), cy + 0.8 * r * math.sin(a)) for a in np.linspace(0, 2 * np.pi, 9)[:-1]]
    d.choose_tool(page, chart, "lasso")
    d.draw_path(page, poly + [poly[0]])
    page.get_by_text("Selection: ").first.wait_for(timeout=120_000)
    d.wait_idle(page)
    d.assert_no_exception(page)
    lasso = page.evaluate("() => window.__elxLasso")
    assert lasso and len(lasso["x"]) >= 3, lasso
    expected = density.rows_in_lasso(inv_coords, lasso["x"], lasso["y"])
    head = re.search(r"Selection: ([\d,]+) code", page.inner_text("body"))
    assert head and int(head.group(1).replace(",", "")) == len(expected), (head and head.group(0), len(expected))
    got = [int(r["row"]) for r in _selection_csv(page)]
    assert got == expected[:density.SELECTION_DISPLAY_CAP].tolist()


def test_pages_without_decoder_say_so(slow_page, synthetic_url):
    page = slow_page
    for path in ("interpolation", "orbits"):
        d.open_page(page, synthetic_url, path, model="synthetic_codes")
        d.assert_no_exception(page)
        assert "needs a model with inputs and" in page.inner_text("body")  # a decoder (paths) / an encoder (orbits)
