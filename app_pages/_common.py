"""Shared page plumbing: the sidebar, cached loaders, and error display.

Not a page itself (``st.navigation`` in ``app.py`` lists the pages). Models and
encoded data sets live in ``st.cache_resource`` (shared, read-only); maps are
``st.cache_data`` keyed by hashable ids only. No array maths here.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from backend import plots, registry, views
from backend.latents import NODE_ORDERS

DEFAULTS = {"model": registry.available()[0], "projection": "sort", "order": "random",
            "order_seed": 0, "proj_seed": 0, "proj_k": 0, "color": "gap"}
INT_KEYS = ("order_seed", "proj_seed", "proj_k")
INT_MAX = {"order_seed": 10_000, "proj_seed": 10_000, "proj_k": 4096}


@dataclass(frozen=True)
class Selection:
    """What the shared sidebar selected."""

    model: str
    projection: str
    order: str
    order_seed: int
    proj_seed: int
    proj_k: int
    color: str


@st.cache_resource(show_spinner=False)
def get_entry(model_id: str):
    """Registry entry (holds the model in eval mode), shared by all sessions."""
    return registry.get(model_id)


def _ensure_data(entry) -> None:
    key = f"_data_ok_{entry.id}"
    if st.session_state.get(key):
        return
    with st.status(entry.data_loading_message(), expanded=False) as status:
        entry.dataset()
        status.update(label=f"{entry.dataset_name} loaded", state="complete")
    st.session_state[key] = True


def load_encoded(model_id: str, seed: int):
    """All codes of the model's data set, encoding with a progress bar on the first start."""
    entry = get_entry(model_id)
    _ensure_data(entry)
    if not entry.encoded_cache_path(seed).exists():
        with st.status(f"Encoding every {entry.item_noun} with {entry.id} (first start only)...",
                       expanded=True) as status:
            bar = st.progress(0.0)
            entry.encode_dataset(seed, progress=lambda f, msg: bar.progress(min(f, 1.0), text=msg))
            status.update(label="Encoded", state="complete")
    return _encoded(model_id, seed)


@st.cache_resource(show_spinner=False, max_entries=4)
def _encoded(model_id: str, seed: int):
    return get_entry(model_id).encode_dataset(seed)


@st.cache_data(show_spinner="Fitting PCA maps...", max_entries=16)
def get_maps(model_id: str, seed: int, order: str, projection: str, proj_seed: int, proj_k: int = 0):
    """Raw and invariant PCA maps, fitted once per (model, seeds, order, projection, k)."""
    return views.compute_maps(_encoded(model_id, seed), order, projection, proj_seed, proj_k)


@st.cache_data(show_spinner="Drawing the map...", max_entries=8)
def base_map(model_id: str, seed: int, order: str, projection: str, proj_seed: int, proj_k: int,
             color: str, which: str):
    """The Plotly map of all codes, ``which`` in {"raw", "inv"}; built once per setting
    (hover texts for 130k points take a while), copied per use."""
    entry = get_entry(model_id)
    maps = get_maps(model_id, seed, order, projection, proj_seed, proj_k)
    spec = next(s for s in entry.projections() if s.key == projection)
    m = maps.raw if which == "raw" else maps.inv
    name = "Equivariant view: PCA of raw codes" if which == "raw" else \
        f"Invariant view: PCA of {spec.label.lower()}"
    title = f"{name} ({100 * m.explained_variance_ratio.sum():.0f} % var.)"
    return plots.latent_map(m.coords, _encoded(model_id, seed).table, color_option(entry, color), title,
                            label_col=entry.hover_label_col, id_col=entry.id_col)


@st.cache_data(show_spinner="Decoding both paths...", max_entries=32)
def interpolation(model_id: str, seed: int, order: str, projection: str, proj_seed: int, proj_k: int,
                  end_a: tuple, end_b: tuple, steps: int):
    """Both interpolation paths between two endpoints given as ("row", r) or ("text", s);
    cached so moving the step slider does not decode again."""
    entry = get_entry(model_id)
    encoded = _encoded(model_id, seed)
    maps = get_maps(model_id, seed, order, projection, proj_seed, proj_k)
    codes = [views.endpoint(entry, encoded, order, seed=seed, **{e[0]: e[1]})[0] for e in (end_a, end_b)]
    return views.interpolate(entry, encoded, maps, order, projection, codes[0], codes[1], steps,
                             proj_seed, proj_k)


@st.cache_data(show_spinner="Encoding the orbit...", max_entries=32)
def orbit(model_id: str, seed: int, order: str, projection: str, proj_seed: int, proj_k: int,
          row: int, elements: tuple):
    """The orbit of one input under ``elements`` (a tuple of hashable group elements) on both maps."""
    import numpy as np

    entry = get_entry(model_id)
    maps = get_maps(model_id, seed, order, projection, proj_seed, proj_k)
    return views.orbit_view(entry, maps, _encoded(model_id, seed), order, projection, row,
                            np.array(elements), proj_seed, proj_k)


def _init_state() -> None:
    qp = st.query_params
    for key, default in DEFAULTS.items():
        if key in st.session_state:
            continue
        value = qp.get(key, default)
        if key in INT_KEYS:  # a hand-edited URL must not crash the number inputs
            try:
                value = min(max(int(value), 0), INT_MAX[key])
            except (TypeError, ValueError):
                value = default
        st.session_state[key] = value


def sidebar() -> Selection:
    """Draw the shared sidebar once (called by ``app.py``) and mirror it to the URL."""
    _init_state()
    models = registry.available()
    if st.session_state["model"] not in models:
        st.session_state["model"] = models[0]
    if st.session_state["order"] not in NODE_ORDERS:
        st.session_state["order"] = DEFAULTS["order"]
    with st.sidebar:
        st.header("Model & projection")
        st.selectbox("Model", models, key="model", format_func=lambda m: registry.get(m).label)
        entry = get_entry(st.session_state["model"])
        try:
            specs = entry.projections()
            colors = entry.color_options()
        except registry.WeightsNotFoundError as exc:
            st.error(str(exc))
            st.stop()
        keys = [s.key for s in specs]
        if st.session_state["projection"] not in keys:
            st.session_state["projection"] = keys[0]
        st.selectbox("Invariant projection", keys, key="projection",
                     format_func=lambda k: next(s.label for s in specs if s.key == k),
                     help="\n".join(f"- **{s.label}**: {s.description}" for s in specs))
        st.radio(entry.presentation_label, NODE_ORDERS, key="order", horizontal=True,
                 format_func=lambda k: entry.order_labels.get(k, k), help=entry.order_help)
        st.number_input("Presentation seed", min_value=0, max_value=10_000, step=1, key="order_seed",
                        help="Seed of the random node orders / extra rotations.")
        st.number_input("Projection seed", min_value=0, max_value=10_000, step=1, key="proj_seed",
                        help="Seed of random projections (unused by sorting and pooling).")
        if "k" in views.projection(st.session_state["projection"]).get_params():
            st.number_input("Random templates k (0 = 2·c·N)", min_value=0, max_value=4096, step=1,
                            key="proj_k", help="Number of random templates of max filtering / "
                                               "sorted coorbits.")
        color_keys = [c.key for c in colors]
        if st.session_state["color"] not in color_keys:
            st.session_state["color"] = color_keys[0]
        st.selectbox("Colour by", color_keys, key="color",
                     format_func=lambda k: next(f"{c.label} [{c.unit}]" for c in colors if c.key == k))
        if entry.validity_note:
            st.caption(f"Validity: {entry.validity_note}.")
    sel = Selection(**{k: st.session_state[k] for k in DEFAULTS})
    st.query_params.update({k: str(v) for k, v in sel.__dict__.items()})
    return sel


def current() -> Selection:
    """The sidebar's current selection (for pages)."""
    _init_state()
    return Selection(**{k: st.session_state[k] for k in DEFAULTS})


def color_option(entry, key: str):
    """The entry's colour option with this key."""
    return next(c for c in entry.color_options() if c.key == key)


def svg(markup: str, caption: str | None = None) -> None:
    """Show an SVG drawing (and a caption)."""
    st.markdown(f'<div style="line-height:0">{markup}</div>', unsafe_allow_html=True)
    if caption:
        st.caption(caption)


def tag_badges(tags) -> str:
    """Markdown line with the projection's flags."""
    flags = {"invariant": tags.invariant, "lossless": tags.lossless, "isometric": tags.isometric,
             "decodable": tags.cross_section}
    return " · ".join(f"{'✅' if v else '❌'} {k}" for k, v in flags.items())


def page_data(title: str):
    """Shared page preamble: title, selection, entry, all codes, maps and projection spec.

    Errors are shown with ``st.error`` and stop the page; the app keeps running.
    """
    sel = current()
    entry = get_entry(sel.model)
    st.title(title)
    try:
        encoded = load_encoded(sel.model, sel.order_seed)
        maps = get_maps(sel.model, sel.order_seed, sel.order, sel.projection, sel.proj_seed, sel.proj_k)
    except Exception as exc:  # shown at the page edge; the app keeps running
        st.error(f"Could not load the codes: {exc}")
        st.stop()
    spec = next(s for s in entry.projections() if s.key == sel.projection)
    return sel, entry, encoded, maps, spec
