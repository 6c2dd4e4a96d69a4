"""Interpolation: decode the straight line between raw codes and between invariant codes."""

import streamlit as st

from backend import plots, views
from app_pages import _common, _uploads

sel, entry, encoded, maps, spec = _common.page_data("Interpolation")
if not getattr(entry, "has_decoder", True):  # e.g. synthetic codes: no inputs, no decoder
    st.info(f"Interpolation needs a model with inputs and a decoder; {entry.label} has neither."); st.stop()
table = encoded.table
picked, _ = _common.map_selection(sel.model)

if maps.trivial_action:  # no latent group action: nothing to align, no quotient geodesic
    second = ("this model has no latent group action, so there is no invariant path to compare: the "
              "projection is the identity and both paths are the same straight line")
else:
    second = (f"the **invariant path** is the straight line between their {spec.label.lower()} "
              "representatives, aligned to each other (a quotient geodesic)")
st.markdown(
    f"Pick two {entry.item_noun}s. The **raw path** is the straight line between their codes as "
    f"encoded ({entry.presentation_label.lower()}: *{entry.order_labels.get(sel.order, sel.order)}*); "
    f"{second}. {_common.tag_badges(maps)}")

st.number_input("Random-pair seed", min_value=0, max_value=1_000_000, step=1, key="pair_seed",
                value=_common.kept("pair_seed", 0, int, 0, 1_000_000))
rand_a, rand_b = views.random_pair(len(table), int(st.session_state["pair_seed"]))
ends = []
cols = st.columns(2)
for col, name, rand_row, pick_idx in ((cols[0], "A", rand_a, 0), (cols[1], "B", rand_b, 1)):
    with col:
        typed = entry.search_label
        sources = ["random"] + ([typed] if typed else []) + (["map selection"] if len(picked) > pick_idx else [])
        sources += _uploads.sources(sel.model)  # the user's uploaded inputs, if any
        source = _common.kept_radio(f"{entry.item_noun.capitalize()} {name}", sources, f"src_{name}", "random",
                                    sel.model, horizontal=True)
        if typed and source == typed:
            text = st.text_input(f"{typed} of {name}", key=f"text_{name}",
                                 value=_common.kept(f"text_{name}", entry.search_defaults[pick_idx]))
            key = ("text", text)
        elif source == "map selection":
            key = ("row", int(picked[pick_idx]))
        elif source == _uploads.SOURCE:
            key = ("upload", _uploads.choose(sel.model, f"upl_{name}", f"Your input as {name}", pick_idx))
        else:
            key = ("row", int(rand_row))
        try:
            _, caption, _ = views.endpoint(entry, encoded, sel.order, seed=sel.order_seed, **{key[0]: key[1]})
            st.caption(_common.plain(caption))
            ends.append(key)
        except entry.text_errors as exc:
            st.error(f"{type(exc).__name__}: {exc}")
            ends.append(None)

if any(e is None for e in ends):
    st.info("Fix the input above to see the interpolation.")
    st.stop()

steps = st.slider("Number of steps", 3, 21, key="n_steps", value=_common.kept("n_steps", 9, int, 3, 21))
result = _common.interpolation(sel.model, sel.order_seed, sel.order, sel.projection, sel.proj_seed,
                               sel.proj_k, ends[0], ends[1], steps)
decodable = result.inv_decoded is not None
single = maps.trivial_action  # no latent action: the "invariant path" would be the raw path again
raw_valid = views.validity(result.raw_decoded)  # None for images: validity means nothing there
inv_valid = views.validity(result.inv_decoded) if decodable else None


def step_drawings(decoded: list, constrained: list | None, step: int) -> list[str]:
    """HTML of the model's own decode at ``step`` and, where the family has one, the constrained
    decode beside it (labelled, so the constraint never hides what the model does)."""
    size = (320, 240) if constrained is None else (260, 200)
    label = "model's own decode: " if constrained is not None else ""
    out = [_common.figure_html(entry.render(decoded[step], size),
                               f"step {step} · {label}{entry.caption(decoded[step])}")]
    if constrained is not None:
        out.append(_common.figure_html(entry.render(constrained[step], size),
                                       f"step {step} · {entry.constrained_decode_label}: "
                                       f"{entry.caption(constrained[step])}"))
    return out


@st.fragment
def step_view() -> None:
    """The step slider and what depends on it; reruns alone, so the maps below are neither
    rebuilt nor re-sent when the slider moves."""
    start = _common.kept("step", steps // 2, int, 0, 20)
    if start > steps - 1:  # fewer steps than before: start from the last one
        st.session_state.pop("step", None)
        start = steps - 1
    step = st.slider("Step along the path (t = step / (steps − 1))", 0, steps - 1, key="step", value=start)
    left, right = st.columns(2)
    with left:
        _common.html_row(step_drawings(result.raw_decoded, result.raw_constrained, step),
                         "Raw path (straight line in Z)")
    with right:
        if single:
            st.caption("No invariant path: this model has no latent group action, so the only "
                       "projection is the identity and its path is the raw path.")
        elif decodable:
            _common.html_row(step_drawings(result.inv_decoded, result.inv_constrained, step),
                             f"Invariant path ({spec.label})")
        else:
            row = int(result.inv_nearest_rows[step])
            _common.html_row([_common.figure_html(
                entry.render_row(row, (320, 240)),
                f"step {step} · nearest real {entry.item_noun}: {entry.describe_row(row)['title']}")],
                f"Invariant path ({spec.label})")
    paths = [("raw path", "#d62728", result.raw_on_raw_map, result.raw_on_inv_map, raw_valid)]
    if not single:
        paths.append(("invariant path", "#ff7f0e", result.inv_on_raw_map, result.inv_on_inv_map, inv_valid))
    _common.svg(plots.path_detail_svg(paths[:1] if single else paths, step),
                "The path with the slider's step (star) on the map; crosses: invalid decodes." if single else
                "Both paths with the slider's step (star) on the two maps; crosses: invalid decodes.")
    _common.finish_fragment_url()  # a fragment rerun does not reach app.py's finish_url: step= in the URL


step_view()
if not decodable and not single:
    st.warning(f"{spec.label} is not a cross-section, so its codes cannot be decoded: each step "
               f"shows the nearest real {entry.item_noun} in projected space instead.")

m1, m2 = st.columns(2)
for col, which, raw_xy, inv_xy in ((m1, "raw", result.raw_on_raw_map, result.inv_on_raw_map),
                                    (m2, "inv", result.raw_on_inv_map, result.inv_on_inv_map)):
    if single and which == "inv":  # the identity map would repeat the raw one
        continue
    with col:
        st.markdown(f"**{_common.map_title(maps, spec, which)}**")
        fig = _common.base_map(sel.model, sel.order_seed, sel.order, sel.projection, sel.proj_seed,
                               sel.proj_k, sel.color, which)
        plots.add_path(fig, raw_xy, "raw path", "#d62728", None, raw_valid)
        if not single:
            plots.add_path(fig, inv_xy, "invariant path", "#ff7f0e", None, inv_valid)
        st.plotly_chart(fig, width="stretch", key=f"interp_{which}_map")
st.caption(("Crosses mark steps that decode to invalid outputs. " if entry.validity_note else "")
           + "The star for the slider's step is in the small figure above."
           + ("" if single else " On the invariant map the raw path is shown through the projection."))

paths = [("raw path", result.raw_decoded, result.raw_constrained)]
if decodable and not single:
    paths.append(("invariant path", result.inv_decoded, result.inv_constrained))
for name, decoded, constrained in paths:
    rows = [("model's own decode" if constrained is not None else "", decoded)]
    if constrained is not None:
        rows.append((entry.constrained_decode_label, constrained))
    for how, items in rows:
        st.subheader(f"All steps · {name}{' · ' + how if how else ''}: {entry.path_summary(items)}")
        grid = st.columns(min(steps, 7))
        for i, d in enumerate(items):
            with grid[i % len(grid)]:
                _common.svg(entry.render(d, (150, 120)), f"{i}: {entry.caption(d)}")
if not decodable and not single:
    st.subheader("All steps · invariant path: nearest real samples")
    grid = st.columns(min(steps, 7))
    for i, row in enumerate(result.inv_nearest_rows):
        with grid[i % len(grid)]:
            _common.svg(entry.render_row(int(row), (150, 120)), f"{i}: {entry.describe_row(int(row))['title']}")
if entry.validity_note:
    st.caption(f"{entry.validity_note}.")
