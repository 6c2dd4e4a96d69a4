"""The map component's payload (``app_pages/components/map_chart``): the points it draws itself
go over as typed bytes in row order, everything else as Plotly JSON.

* every row once, with its own coordinates, whatever the colour; the coordinates' hash does not
  change with the colour (a colour change does not re-decode them);
* each point trace becomes a group with its colour and hover text; categories get legend
  entries of no points; other traces (colour bar, overlays) pass on, small WebGL traces as SVG;
* ``with_traces`` adds overlays without touching the points; ``selected_rows`` reads the
  component's value.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from app_pages.components import map_chart
from backend import plots
from backend.registry import ColorOption


def _maps(n=2_000, seed=0):
    rng = np.random.default_rng(seed)
    coords = rng.normal(size=(n, 2)).astype(np.float32)
    table = pd.DataFrame({"gap": rng.normal(5, 1, n), "kind": rng.integers(0, 4, n)})
    table.loc[3, "gap"] = np.nan  # a row without a value (the grey trace)
    cont = plots.latent_map(coords, table, ColorOption("gap", "gap", "eV"))
    cat = plots.latent_map(coords, table, ColorOption("kind", "kind", "category", categorical=True))
    return coords, cont, cat


def _arrays(p: map_chart.MapPayload):
    n = p.n
    b = p.points
    x = np.frombuffer(b, np.float32, n, 0)
    y = np.frombuffer(b, np.float32, n, 4 * n)
    rows = np.frombuffer(b, np.int32, n, 8 * n)
    group = np.frombuffer(b, np.uint16, n, 12 * n)
    return x, y, rows, group


def test_points_go_over_in_row_order_with_their_coordinates_and_groups():
    coords, cont, cat = _maps()
    for fig in (cont, cat):
        p = map_chart.payload(fig)
        x, y, rows, group = _arrays(p)
        assert p.n == len(coords) and rows.tolist() == list(range(len(coords)))
        np.testing.assert_array_equal(np.stack([x, y], 1), coords)
        spec = json.loads(p.spec)
        assert len(spec["groups"]) == len([t for t in fig.data if t.meta == plots.MAP_POINTS_META])
        # each row's group is the trace that held it in the figure
        traces = [t for t in fig.data if t.meta == plots.MAP_POINTS_META]
        for g, t in enumerate(traces):
            assert set(np.asarray(t.customdata).tolist()) == set(np.flatnonzero(group == g).tolist())
            assert spec["groups"][g]["color"] == t.marker.color and spec["groups"][g]["hover"] == t.hovertemplate
        assert not any(t.get("meta") == plots.MAP_POINTS_META for t in spec["data"])  # no point traces left
        assert all(t["type"] != "scattergl" for t in spec["data"])  # no WebGL context in the chart


def test_a_colour_change_keeps_the_coordinates_hash():
    _, cont, cat = _maps()
    a, b = map_chart.payload(cont), map_chart.payload(cat)
    assert a.coords_rev == b.coords_rev and a.rev != b.rev
    assert map_chart.payload(cont).rev == a.rev  # deterministic


def test_categories_get_legend_entries_and_the_colour_bar_passes_on():
    _, cont, cat = _maps()
    spec = json.loads(map_chart.payload(cat).spec)
    legend = [t for t in spec["data"] if str(t.get("meta", "")).startswith("elx_group_")]
    assert [t["name"] for t in legend] == [str(k) for k in range(4)]
    spec = json.loads(map_chart.payload(cont).spec)
    bars = [t for t in spec["data"] if t.get("marker", {}).get("showscale")]
    assert len(bars) == 1 and bars[0]["type"] == "scatter"
    extent = [t for t in spec["data"] if t.get("meta") == "elx_extent"]
    assert len(extent) == 1 and extent[0]["customdata"] == [-1, -1]  # frames the points, selects nothing


def test_overlays_are_drawn_by_plotly_above_the_points():
    _, cont, _ = _maps()
    p = map_chart.payload(cont)
    more = map_chart.with_traces(p, [go.Scattergl(x=[0.0, 1.0], y=[0.0, 1.0], mode="lines+markers", name="path",
                                                  customdata=[-1, -1])])
    assert more.points is p.points and more.coords_rev == p.coords_rev and more.rev != p.rev
    assert json.loads(more.spec)["data"][-1]["type"] == "scatter"
    fig = go.Figure(cont)
    fig.add_trace(go.Scatter(x=[0.5], y=[0.5], mode="markers", name="your inputs", customdata=[-1]))
    assert json.loads(map_chart.payload(fig).spec)["data"][-1]["name"] == "your inputs"


def test_selected_rows_reads_the_components_value():
    assert map_chart.selected_rows(None) == []
    assert map_chart.selected_rows({"rows": [5, 2, 5, -1], "kind": "lasso", "seq": 3}) == [2, 5]
    assert map_chart.selected_rows({"rows": [], "kind": "none", "seq": 4}) == []


def test_the_selection_is_ringed_and_sent_to_the_component_on_any_map():
    coords, cont, _ = _maps()
    rings, shown = plots.selection_rings(coords, [7, 3, 3, -1, 10**6])
    assert shown == 2 and rings.meta == plots.SELECTION_META and rings.marker.symbol == "circle-open"
    np.testing.assert_allclose(np.stack([rings.x, rings.y], 1), coords[[3, 7]], rtol=1e-6)
    assert list(rings.customdata) == [-1, -1]  # a ring never selects itself
    assert plots.selection_rings(coords, []) == (None, 0)
    many, shown = plots.selection_rings(coords, range(1500), cap=100)
    assert shown == 100 and len(many.x) == 100  # capped, evenly spread from the first to the last row
    assert many.x[0] == coords[0, 0] and many.x[-1] == coords[1499, 0]

    p = map_chart.payload(cont)
    assert map_chart.with_selection(p, []) is p
    more = map_chart.with_selection(map_chart.with_traces(p, [rings]), [7, 3, -1])
    spec = json.loads(more.spec)
    assert spec["selected"] == [3, 7] and spec["data"][-1]["meta"] == plots.SELECTION_META
    assert more.points is p.points and more.coords_rev == p.coords_rev and more.rev != p.rev
