"""Overview: what the tool shows, and the selected model's card (metrics from its sidecar)."""

import streamlit as st

from app_pages import _codes, _common
from backend import registry

sel = _common.current()
entry = _common.get_entry(sel.model)

st.title("Equivariant latent explorer")
st.markdown(
    """
An equivariant model maps an object and its transformed copy (the same molecule with its atoms
relabelled, the same digit rotated) to **different codes on one group orbit**. PCA, interpolation or nearest neighbours
on those raw codes mix up *what the object is* with *how it was presented*. An **invariant
projection** `s` with `s(g·z) = s(z)` removes the presentation; sorting the per-node codes of the
graph VAE is an *isometric cross-section*: it loses nothing and keeps quotient distances
(Hansen, Calissano & Feragen, *Interpreting Equivariant Representations*, ICML 2024).

* **Latent maps**: PCA of raw codes (equivariant view) next to PCA of `s(z)` (invariant view).
* **Interpolation**: decode the straight line between raw codes and between invariant
  (cross-section) codes aligned to each other.
* **Orbits**: transform one input by many group elements (relabellings, rotations) and see its
  orbit as a loop or cloud on the equivariant map and a single point on the invariant one.

"""
)
models = [_common.get_entry(m) for m in _codes.visible(registry.available())]
st.markdown(f"**{len(models)} model{'s' if len(models) != 1 else ''}** {'are' if len(models) != 1 else 'is'} available (choose one in the sidebar):\n"
            + "\n".join(f"* {m.label}" for m in models))

try:
    card = entry.sidecar
except Exception as exc:  # missing weights: say how to make them
    st.error(str(exc))
    st.stop()

st.subheader(f"Model: {entry.label}")
metrics = entry.headline_metrics()
PER_ROW = 3  # wider columns: st.metric cuts a long label with an ellipsis
for start in range(0, len(metrics), PER_ROW):
    for col, (label, value) in zip(st.columns(PER_ROW), metrics[start:start + PER_ROW]):
        col.metric(label, value, help=label)
st.markdown(entry.card_text())
stages = card.get("fine_tuned_from") or []
if stages:  # trained in stages, each from the previous stage's weights
    st.markdown(f"Trained in {len(stages) + 1} stages, each starting from the previous stage's weights "
                "(matched by their SHA-256; the `--init-from` paths were temporary copies):\n"
                + "\n".join(f"{i}. `{c.get('command')}`" for i, c in enumerate(stages + [card], start=1)))
with st.expander("Sidecar (JSON)"):
    st.json({k: v for k, v in card.items() if k != "history"})
if entry.overview_note:
    st.markdown(entry.overview_note)
