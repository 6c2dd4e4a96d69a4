"""The Latent maps page's export expander: coordinates, invariant features and figures as files.

Not a page. The bytes come from :mod:`backend.export`; every button builds its file
only when clicked (a callable ``data``), so the maps are not serialized on each rerun.
"""

from __future__ import annotations

import streamlit as st

from backend import export

#: largest features table (codes x features) offered as CSV; the .npz has no limit
FEATURES_CSV_MAX_VALUES = 5_000_000


def export_expander(sel, entry, encoded, maps, spec) -> None:
    """Draw the "Export" expander for the maps on the page (call at the end of the page)."""
    from app_pages import _common

    table, id_col = encoded.table, entry.id_col
    # every setting that changes the numbers is in the name: model, presentation and its seed,
    # projection with its template seed (and k where set)
    stem = f"{entry.id}_{sel.order}-seed{sel.order_seed}_{spec.key}-seed{sel.proj_seed}"
    if sel.proj_k:
        stem += f"-k{sel.proj_k}"
    m, f = maps.projected.shape
    with st.expander("Export: map coordinates, invariant features, figures", icon=":material/download:"):
        st.caption(f"Both maps' coordinates (`raw_pc1, raw_pc2, inv_pc1, inv_pc2`) with `row`, `{id_col}` and "
                   f"every property as stored, one row per {entry.item_noun} ({m:,} rows).")
        c1, c2, c3 = st.columns(3)
        c1.download_button("Maps · CSV", lambda: export.csv_bytes(export.maps_table(table, maps, id_col)),
                           file_name=f"{stem}_maps.csv", mime="text/csv", on_click="ignore", key="export_maps_csv")
        if export.parquet_available():
            c2.download_button("Maps · Parquet",
                               lambda: export.parquet_bytes(export.maps_table(table, maps, id_col)),
                               file_name=f"{stem}_maps.parquet", mime="application/vnd.apache.parquet",
                               on_click="ignore", key="export_maps_parquet")
        else:
            c2.caption("Parquet needs pyarrow (`pip install pyarrow`).")
        st.caption(f"The invariant features s(z) of **{spec.label}** ({m:,} × {f:,}, float32) with `row` and "
                   f"`{id_col}`.")
        c1, c2, c3 = st.columns(3)
        ids = table[id_col] if id_col in table else None
        c1.download_button("Features · npz",
                           lambda: export.features_npz_bytes(maps.projected, spec.key, ids, model=entry.id,
                                                             order=sel.order, proj_seed=sel.proj_seed),
                           file_name=f"{stem}_features.npz", mime="application/octet-stream", on_click="ignore",
                           key="export_features_npz")
        if m * f <= FEATURES_CSV_MAX_VALUES:
            c2.download_button("Features · CSV", lambda: export.features_csv_bytes(maps.projected, ids, id_col),
                               file_name=f"{stem}_features.csv", mime="text/csv", on_click="ignore",
                               key="export_features_csv")
        else:
            c2.caption(f"CSV only up to {FEATURES_CSV_MAX_VALUES:,} values: use the npz.")
        st.caption(f"Each map as a self-contained interactive HTML page that opens offline: plotly.js "
                   f"embedded ({export.PLOTLY_JS_MB:.1f} MB) plus the points (about "
                   f"{export.PLOTLY_JS_MB + m * export.HTML_BYTES_PER_POINT / 1e6:.0f} MB in all for {m:,} "
                   f"points). For a PNG use the camera button in the chart's own toolbar.")
        c1, c2, c3 = st.columns(3)
        for col, which in ((c1, "raw"), (c2, "inv")):
            fig = _common._base_map(sel.model, sel.order_seed, sel.order, sel.projection, sel.proj_seed,
                                    sel.proj_k, sel.color, which)  # the cached figure; the export copies it
            title = _common.map_title(maps, spec, which)
            col.download_button(f"{'Equivariant' if which == 'raw' else 'Projected'} map · HTML",
                                lambda fig=fig, title=title: export.figure_html_bytes(fig, title),
                                file_name=f"{stem}_{which}_map.html", mime="text/html", on_click="ignore",
                                key=f"export_{which}_html")
