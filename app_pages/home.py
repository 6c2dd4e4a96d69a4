"""Overview: what the tool shows, and the selected model's card (metrics from its sidecar)."""

import streamlit as st

from backend.data import qm9
from app_pages import _common

sel = _common.current()
entry = _common.get_entry(sel.model)

st.title("Equivariant latent explorer")
st.markdown(
    """
An equivariant model maps an object and its transformed copy (the same molecule with its atoms
relabelled) to **different codes on one group orbit**. PCA, interpolation or nearest neighbours
on those raw codes mix up *what the object is* with *how it was presented*. An **invariant
projection** `s` with `s(g·z) = s(z)` removes the presentation; sorting the per-node codes of the
graph VAE is an *isometric cross-section*: it loses nothing and keeps quotient distances
(Hansen, Calissano & Feragen, *Interpreting Equivariant Representations*, ICML 2024).

* **Latent maps**: PCA of raw codes (equivariant view) next to PCA of `s(z)` (invariant view).
* **Interpolation**: decode the straight line between raw codes and between sorted codes.
"""
)

try:
    card = entry.sidecar
except Exception as exc:  # missing weights: say how to make them
    st.error(str(exc))
    st.stop()

st.subheader(f"Model: {entry.label}")
m = card.get("metrics_test", {})
cols = st.columns(4)
cols[0].metric("Exact reconstruction (test)", f"{100 * m.get('exact_reconstruction', 0):.1f} %")
cols[1].metric("Validity, test codes", f"{100 * m.get('validity_test_codes', 0):.1f} %")
cols[2].metric("Validity, prior samples", f"{100 * m.get('validity_prior', 0):.1f} %")
cols[3].metric("Atom-type accuracy", f"{100 * m.get('atom_type_acc', 0):.1f} %")
st.caption(f"{qm9.VALIDITY_DEFINITION}. Test split: {m.get('n_molecules', '?')} molecules; "
           f"{m.get('n_prior_samples', '?')} prior samples z ~ N(0, I).")
cfg = card.get("model_config", {})
st.markdown(
    f"Latent code per molecule: **{cfg.get('n_nodes')} × {cfg.get('latent_dim')}** "
    f"(node slots × channels); group action on the inputs: {entry.input_action_description}. "
    f"Trained {card.get('epochs_completed', 0):.2f} epochs in {card.get('wall_time_s', 0) / 60:.0f} min "
    f"(commit `{str(card.get('git_commit', '?'))[:10]}`), command: `{card.get('command', '?')}`.")
with st.expander("Sidecar (JSON)"):
    st.json({k: v for k, v in card.items() if k != "history"})
st.markdown(
    "**Charged molecules.** QM9 holds 580 molecules with formal charges (zwitterions, nitro groups, "
    "isocyanides). They are modelled, not excluded: `N+`, `O-`, `C-` and `N-` are atom types of "
    "their own, so every one of the 130,831 molecules is representable.")
