"""AppTest: the map selection (a click, box or lasso on either map) is marked on BOTH big maps,
as red rings at the selected rows' points (and, for the map component, sent to it so it dims the
other points), and stays marked after a projection change (the same rows, new coordinates)."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from backend import plots
from tests.app.apptest import run_app


def _arr(v, dtype=np.float64) -> np.ndarray:
    if isinstance(v, dict):  # Plotly's typed array encoding
        return np.frombuffer(base64.b64decode(v["bdata"]), np.dtype(v["dtype"])).astype(dtype)
    return np.asarray(v, dtype)


def _maps(at) -> list[tuple[dict, dict]]:
    """Per big map, in page order: (Plotly spec, {row: (x, y)} of its points)."""
    out = []
    for c in at.get("plotly_chart"):
        spec = json.loads(c.proto.spec)
        pts = {}
        for t in spec["data"]:
            if t.get("meta") == plots.MAP_POINTS_META:
                rows = _arr(t["customdata"], np.int64).reshape(-1)
                pts.update(zip(rows.tolist(), zip(_arr(t["x"]).tolist(), _arr(t["y"]).tolist())))
        if pts:
            out.append((spec, pts))
    for c in at.get("component_instance"):
        args = json.loads(c.proto.json_args)
        if "spec" not in args:
            continue
        n = int(args["n"])
        raw = next(a.bytes for a in c.proto.special_args if a.key == "points")
        x, y = np.frombuffer(raw, np.float32, n, 0), np.frombuffer(raw, np.float32, n, 4 * n)
        rows = np.frombuffer(raw, np.int32, n, 8 * n)
        out.append((json.loads(args["spec"]), dict(zip(rows.tolist(), zip(x.tolist(), y.tolist())))))
    return out


def _check(at, rows: list[int], component: bool) -> None:
    maps = _maps(at)
    assert len(maps) == 2
    for spec, pts in maps:
        rings = [t for t in spec["data"] if t.get("meta") == plots.SELECTION_META]
        assert len(rings) == 1, [t.get("meta") for t in spec["data"]]
        got = np.stack([_arr(rings[0]["x"]), _arr(rings[0]["y"])], 1)
        want = np.array([pts[r] for r in rows])
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        assert (_arr(rings[0]["customdata"]) == -1).all()
        if component:
            assert spec["selected"] == rows  # the component dims the other points
    assert any("Red rings mark the selected" in c.value for c in at.caption)


@pytest.mark.parametrize("component", [True, False], ids=["component", "plotly_chart"])
def test_a_selection_is_ringed_on_both_maps_and_survives_a_projection_change(tiny_registry, monkeypatch,
                                                                              component):
    monkeypatch.setenv("ELX_MAP_COMPONENT", "1" if component else "0")
    at = run_app("app_pages/latent_maps.py")
    maps = _maps(at)
    assert len(maps) == 2
    assert not any(t.get("meta") == plots.SELECTION_META for spec, _ in maps for t in spec["data"])
    rows = [5, 17]
    # what a click / box / lasso on either map stores (app_pages/_common.set_map_selection)
    at.session_state["map_selection"] = {"model": at.session_state["model"], "rows": rows, "total": len(rows)}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    _check(at, rows, component)
    before = [pts for _, pts in _maps(at)]
    projection = at.selectbox(key="projection")
    others = [o for o in projection.options if o != projection.value]
    assert others
    projection.set_value(others[-1]).run()
    assert not at.exception, [e.value for e in at.exception]
    _check(at, rows, component)
    after = [pts for _, pts in _maps(at)]
    assert before[0] == after[0] and before[1] != after[1]  # the invariant map moved, its rings with it
