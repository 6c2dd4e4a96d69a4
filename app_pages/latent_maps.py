"""Latent maps: PCA of raw codes (equivariant view) next to PCA of s(z) (invariant view)."""

import streamlit as st

from backend import plots, views
from app_pages import _common

sel, entry, encoded, maps, spec = _common.page_data("Latent maps")
table = encoded.table
option = _common.color_option(entry, sel.color)
noun = entry.item_noun
bad = (f" ({int((~table['representable']).sum())} not representable by the featurization)"
       if "representable" in table else "")
st.markdown(f"**{len(table):,} {noun}s**{bad}, {entry.presentation_label.lower()}: "
            f"*{entry.order_labels.get(sel.order, sel.order)}* (seed {sel.order_seed}). "
            f"Projection **{spec.label}**: {_common.tag_badges(maps.tags)}. "
            f"Measured invariance error (same {noun}s, both presentations): "
            f"max |Δs| = {maps.invariance_error:.2e}.")

picked = st.session_state.get("map_selection", [])
events = []
for col, which, m in zip(st.columns(2), ("raw", "inv"), (maps.raw, maps.inv)):
    with col:
        fig = _common.base_map(sel.model, sel.order_seed, sel.order, sel.projection, sel.proj_seed,
                               sel.proj_k, sel.color, which)
        events.append(st.plotly_chart(
            plots.add_selection(fig, m.coords, picked), key=f"map_{which}", on_select="rerun",
            selection_mode=("points", "lasso", "box"), width="stretch"))
st.caption(f"PCA is fitted once on all {noun}s; each axis is flipped so that its largest loading "
           "is positive. Click a point or lasso a group to inspect it.")

new = []
for ev in events:
    points = (ev or {}).get("selection", {}).get("points", []) if isinstance(ev, dict) else \
        getattr(getattr(ev, "selection", None), "points", []) or []
    new += views.selected_rows(points)
if new and sorted(set(new)) != picked:
    st.session_state["map_selection"] = sorted(set(new))
    picked = st.session_state["map_selection"]

if picked:
    st.subheader(f"Selection: {len(picked)} {noun}(s)")
    shown = picked[:6]
    codes = encoded.codes(sel.order)[shown]
    recon = entry.decode(codes)
    for i, (row, z, dec) in enumerate(zip(shown, codes.values, recon)):
        info = entry.describe_row(row)
        value = plots.color_column(table.iloc[[row]], option)[0][0]
        value = f"{value:.4g}" if isinstance(value, float) else str(value)
        c1, c2, c3 = st.columns([1, 1, 2])
        with c1:
            _common.svg(entry.render_row(row), f"{info['title']} · {option.key} = {value} {option.unit}")
        with c2:
            _common.svg(entry.render(dec), f"decoded from its code: {entry.caption(dec)}")
        with c3:
            mask = None if codes.mask is None else codes.mask[i]
            st.plotly_chart(entry.code_figure(z, mask, "raw code"), width="stretch", key=f"code_{row}")
    if len(picked) > len(shown):
        st.caption(f"Showing the first {len(shown)} of {len(picked)} selected {noun}s.")
        cols = list(dict.fromkeys(c for c in (entry.id_col, entry.hover_label_col, option.key, "split")
                                  if c in table))
        st.dataframe(table.iloc[picked][cols], hide_index=True)
    if st.button("Clear selection"):
        st.session_state["map_selection"] = []
        st.rerun()
if entry.validity_note:
    st.caption(f"{entry.validity_note}.")
