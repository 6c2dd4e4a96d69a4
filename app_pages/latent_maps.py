"""Latent maps: PCA of raw codes (equivariant view) next to PCA of s(z) (invariant view)."""

import streamlit as st

from backend import plots, views
from backend.data import qm9
from app_pages import _common

sel, entry, encoded, maps, spec = _common.page_data("Latent maps")
table = encoded.table
option = _common.color_option(entry, sel.color)
n_bad = int((~table["representable"]).sum())
st.markdown(f"**{len(table):,} molecules** ({n_bad} not representable by the featurization), node order *{sel.order}* (seed {sel.order_seed}). "
            f"Projection **{spec.label}**: {_common.tag_badges(maps.tags)}. "
            f"Measured invariance error (same molecules, stored vs random order): "
            f"max |Δs| = {maps.invariance_error:.2e}.")

picked = st.session_state.get("map_selection", [])
events = []
for col, which, m in zip(st.columns(2), ("raw", "inv"), (maps.raw, maps.inv)):
    with col:
        fig = _common.base_map(sel.model, sel.order_seed, sel.order, sel.projection, sel.proj_seed,
                               sel.color, which)
        events.append(st.plotly_chart(
            plots.add_selection(fig, m.coords, picked), key=f"map_{which}", on_select="rerun",
            selection_mode=("points", "lasso", "box"), width="stretch"))
st.caption("PCA is fitted once on all molecules; each axis is flipped so that its largest loading "
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
    st.subheader(f"Selection: {len(picked)} molecule(s)")
    shown = picked[:6]
    codes = encoded.codes(sel.order)[shown]
    recon = entry.decode(codes)
    for row, z, dec in zip(shown, codes.values, recon):
        info = entry.describe_row(row)
        c1, c2, c3 = st.columns([1, 1, 2])
        with c1:
            _common.svg(entry.render(info["smiles"]),
                        f"QM9 #{info['qm9_index']}: {info['smiles']} · {option.key} = "
                        f"{plots.color_column(table.iloc[[row]], option)[0][0]:.4g} {option.unit}")
        with c2:
            _common.svg(entry.render(dec), f"decoded from its code: {dec.smiles or '—'}"
                        f" ({'valid' if dec.valid else 'invalid'})")
        with c3:
            mask = None if codes.mask is None else codes.mask[shown.index(row)]
            st.plotly_chart(plots.code_bar(z, mask, "raw code per node slot (grey = empty slot)"),
                            width="stretch", key=f"code_{row}")
    if len(picked) > len(shown):
        st.caption(f"Showing the first {len(shown)} of {len(picked)} selected molecules.")
        st.dataframe(table.iloc[picked][["qm9_index", "smiles", option.key, "n_atoms", "split"]],
                     hide_index=True)
    if st.button("Clear selection"):
        st.session_state["map_selection"] = []
        st.rerun()
st.caption(f"{qm9.VALIDITY_DEFINITION}.")
