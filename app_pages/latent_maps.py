"""Latent maps: PCA of raw codes (equivariant view) next to PCA of s(z) (invariant view)."""

import streamlit as st

from backend import density, plots, views
from app_pages import _common, _export, _uploads
from app_pages.components import map_chart

sel, entry, encoded, maps, spec = _common.page_data("Latent maps")
table = encoded.table
option = _common.color_option(entry, sel.color)
noun = entry.item_noun
bad = (f" ({int((~table['representable']).sum())} not representable by the featurization)"
       if "representable" in table else "")
st.markdown(f"**{len(table):,} {noun}s**{bad}, {entry.presentation_label.lower()}: "
            f"*{entry.order_labels.get(sel.order, sel.order)}* (seed {sel.order_seed}). "
            f"Projection **{spec.label}**. {_common.tag_badges(maps)}")


# the map component (a chart that stays mounted and redraws only what changed) draws scatter maps;
# density rasters and ELX_MAP_COMPONENT=0 use st.plotly_chart
component = map_chart.enabled() and not density.use_density(len(table)) and map_chart.ready()


def _on_select(which: str) -> None:
    """A click, lasso or box on one map replaces the selection (most recent map wins)."""
    event = st.session_state.get(f"map_{which}_{st.session_state.get('map_gen', 0)}")
    if component:  # the component returns row ids
        _common.set_map_selection(sel.model, map_chart.selected_rows(event))
        return
    selection = (event or {}).get("selection", {}) if event else {}
    if density.use_density(len(table)):  # a raster: the box / lasso in PC units -> all rows inside
        rows = density.rows_in_selection((maps.raw if which == "raw" else maps.inv).coords, selection)
        _common.set_map_selection(sel.model, rows[:density.SELECTION_DISPLAY_CAP], len(rows))
    else:
        _common.set_map_selection(sel.model, views.selected_rows(selection.get("points", [])))


gen = st.session_state.get("map_gen", 0)
# the current selection (a click, box or lasso on either map, kept across projection and colour
# changes) is ringed on both maps; the map component also dims the other points
picked, total = _common.map_selection(sel.model)
total = max(total, len(picked))
ringed = 0
# one WebGL pixel per CSS pixel for large maps (a quarter of the pixels to draw on each change)
config = {} if density.use_density(len(table)) else plots.map_chart_config(len(table))
for col, which in zip(st.columns(2), ("raw", "inv")):
    with col:
        # a fixed-height title row keeps both maps aligned when one title wraps to two lines
        st.markdown(f'<div style="min-height:3.2em"><b>{_common.map_title(maps, spec, which)}</b></div>',
                    unsafe_allow_html=True)
        rings, ringed = plots.selection_rings((maps.raw if which == "raw" else maps.inv).coords, picked)
        rings = [rings] if rings is not None else []
        if component:  # kept per setting: a rerun that does not change this map sends the same bytes
            data = _common.map_payload(sel.model, sel.order_seed, sel.order, sel.projection, sel.proj_seed,
                                       sel.proj_k, sel.color, which)
            data = map_chart.with_traces(data, _uploads.traces(sel, which) + rings)  # the user's inputs, if any
            data = map_chart.with_selection(data, picked)
            map_chart.map_chart(data, key=f"map_{which}_{gen}", on_change=lambda w=which: _on_select(w))
            continue
        fig = _common.base_map(sel.model, sel.order_seed, sel.order, sel.projection, sel.proj_seed,
                               sel.proj_k, sel.color, which)
        fig = _uploads.add_to_map(fig, sel, which)  # the user's inputs, if any
        for trace in rings:
            fig.add_trace(trace)
        st.plotly_chart(fig, key=f"map_{which}_{gen}", on_select=lambda w=which: _on_select(w),
                        selection_mode=("points", "box", "lasso"), width="stretch", config=config)
if density.use_density(len(table)):
    st.caption(f"PCA is fitted once on all {noun}s. More than {density.DENSITY_THRESHOLD:,} {noun}s: each map "
               "is a **density raster** drawn on the server (datashader), coloured per pixel. **Drag a box** "
               "(or pick *Lasso select* in the toolbar) to select every code inside it.")
else:
    st.caption(f"PCA is fitted once on all {noun}s; each axis is flipped so that its largest loading "
               "is positive. **Click a point** to inspect it; for a group, pick *Lasso select* or *Box "
               "select* in the chart's toolbar and draw. Hover shows the row and the colour value (for a "
               "continuous colour its bin: the map draws 32 colour steps); the selection table shows exact values.")
_uploads.map_caption(sel)
_uploads.results_section(sel)  # the per-row results of the user's inputs, if any
if ringed:
    dim = " (the other points dimmed)" if component else ""
    over = "them" if len(picked) == total else f"the first {len(picked):,} (ascending rows)"
    st.caption(f"Red rings mark the selected {noun}s on both maps{dim}"
               + (f": {ringed:,} of the {total:,} selected, evenly spread over {over} (at most "
                  f"{plots.SELECTION_RING_CAP:,} rings per map)." if ringed < total else "."))
if maps.projected.shape[1] == 1:
    st.info(f"{spec.label} keeps a single number per {noun}, so its map is one-dimensional: the "
            "points lie on PC 1 (PC 2 is 0), so the map holds no more than a histogram would.")

if picked:
    st.subheader(f"Selection: {total:,} {noun}(s)")
    if total > len(picked):
        st.caption(f"The table and the CSV list the first {len(picked):,} of {total:,} selected {noun}s "
                   "(ascending rows).")
    st.plotly_chart(plots.selection_overview(maps.raw.coords, maps.inv.coords, picked),
                    width="stretch", key="selection_overview")
    cols = list(dict.fromkeys(c for c in (entry.id_col, entry.hover_label_col, "split") if c in table))
    st.dataframe(views.selection_table(table, picked, cols, option), hide_index=True, key="selection_table")
    st.download_button("Download the selection (CSV: rows, ids, colour, both maps' coordinates)",
                       views.selection_csv(table, picked, cols, maps, option), file_name="selection.csv",
                       mime="text/csv", key="selection_csv", on_click="ignore")
    shown = picked[:6] if getattr(entry, "has_decoder", True) else []  # synthetic codes: no decoder
    codes = encoded.codes(sel.order)[shown]
    recon = entry.decode(codes) if shown else []
    constrained = entry.decode_constrained(codes) if shown else None
    for i, (row, z, dec) in enumerate(zip(shown, codes.values, recon)):
        info = entry.describe_row(row)
        value = plots.color_column(table.iloc[[row]], option)[0][0]
        value = f"{value:.4g}" if isinstance(value, float) else str(value)
        c1, c2, c3 = st.columns([1, 1, 2])
        with c1:
            _common.svg(entry.render_row(row), f"row {row} · {info['title']} · {option.key} = {value} "
                                               f"{option.unit}")
        with c2:
            _common.svg(entry.render(dec), f"decoded from its code (model's own decode): {entry.caption(dec)}")
            if constrained is not None:
                _common.svg(entry.render(constrained[i]),
                            f"{entry.constrained_decode_label}: {entry.caption(constrained[i])}")
        with c3:
            mask = None if codes.mask is None else codes.mask[i]
            st.plotly_chart(entry.code_figure(z, mask, "raw code"), width="stretch", key=f"code_{row}")
    if shown and len(picked) > len(shown):
        st.caption(f"Drawing the first {len(shown)} of {len(picked)} selected {noun}s; the table "
                   "above lists all of them.")
    if getattr(entry, "has_decoder", True):
        st.caption("The selection is kept when you switch pages: Interpolation and Orbits offer it as "
                   "*map selection*.")
    if st.button("Clear selection"):
        _common.set_map_selection(sel.model, [])
        st.session_state["map_gen"] = gen + 1  # new chart keys: the charts forget their selection
        st.rerun()
if entry.validity_note:
    st.caption(f"{entry.validity_note}.")
_export.export_expander(sel, entry, encoded, maps, spec)  # coordinates, features, figures
