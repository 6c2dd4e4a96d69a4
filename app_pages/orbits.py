"""Orbits: act on one input with many group elements and trace its codes on both maps."""

import streamlit as st

from backend import plots, views
from backend.families.base import Angles
from app_pages import _common, _uploads

sel, entry, encoded, maps, spec = _common.page_data("Orbits")
if not getattr(entry, "has_decoder", True):  # e.g. synthetic codes: no inputs, no decoder
    st.info(f"The orbit view transforms an input and encodes every copy, so it needs a model with inputs and "
            f"an encoder; {entry.label} has only codes."); st.stop()
table = encoded.table
noun = entry.item_noun
action = entry.input_action  # how the group acts on the inputs; its widget decides the controls below
picked, _ = _common.map_selection(sel.model)

if maps.trivial_action:
    second = ("the right-hand map shows the same codes again (this model has no latent group action), "
              "so the copies spread there too: invariance can only come from the input side")
else:
    second = f"on the invariant map of **{spec.label}** they should sit on one point"
first = ("On the map of the raw codes the copies spread out (nothing ties the code of a transformed input "
         "to the code of the input)" if maps.trivial_action else
         "On the equivariant map the copies trace the orbit (a loop or a cloud)")
st.markdown(
    f"Transform one {noun}'s **input** ({action.description}) and encode each copy. "
    f"{first}; {second}. {_common.tag_badges(maps)}")

c1, c2 = st.columns(2)
with c1:
    typed = entry.search_label
    sources = ["random"] + ([typed] if typed else []) + (["map selection"] if picked else [])
    sources += _uploads.sources(sel.model)  # the user's uploaded inputs, if any
    upload = None  # (digest, index) of an uploaded input, else the data set's ``row``
    source = _common.kept_radio(f"Pick the {noun}", sources, "orbit_src", "random", sel.model, horizontal=True)
    if source == "map selection":
        row = int(picked[0])
    elif source == _uploads.SOURCE:
        row, upload = None, _uploads.choose(sel.model, "orbit_upload", f"Your {noun}")
    elif typed and source == typed:
        text = st.text_input(typed, key="orbit_text", value=_common.kept("orbit_text", entry.search_defaults[0]))
        try:
            _, caption, row = views.endpoint(entry, encoded, sel.order, text=text, seed=sel.order_seed)
        except entry.text_errors as exc:
            st.error(f"{type(exc).__name__}: {exc}")
            st.stop()
        if row is None:
            st.info(f"{caption}: the orbit view needs a {noun} of the data set.")
            st.stop()
    else:
        pick_seed = st.number_input("Random pick seed", 0, 1_000_000, key="orbit_seed",
                                    value=_common.kept("orbit_seed", 0, int, 0, 1_000_000))
        row = views.random_pair(len(table), int(pick_seed))[0]
    st.caption(_common.plain(_uploads.title(upload) if upload else entry.describe_row(row)["title"]))

with c2:
    if action.widget == "angle":
        n_orbit = st.slider("Orbit: number of rotation angles", 8, 180, step=8, key="orbit_angles",
                            value=_common.kept("orbit_angles", 72, int, 8, 180))
        deg = st.slider("Rotate the input by (degrees, counter-clockwise)", 0, 359, key="orbit_angle",
                        value=_common.kept("orbit_angle", 45, int, 0, 359))
        chosen = Angles.from_degrees([deg])  # radians inside; degrees only in the widget
    else:  # "relabelling"
        n_orbit = st.slider("Orbit: number of random relabellings", 8, 200, key="orbit_relabellings",
                            value=_common.kept("orbit_relabellings", 60, int, 8, 200))
        how = st.radio("Relabelling shown", ["random", "typed"], horizontal=True, key="orbit_how",
                       index=_common.kept_index("orbit_how", ["random", "typed"], "random"))
        if how == "typed":
            text = st.text_input("Slot order (new slot i takes old slot p[i])", key="orbit_perm",
                                 value=_common.kept("orbit_perm", action.example_text()))
            try:
                chosen = action.parse(text)
            except ValueError as exc:
                st.error(str(exc))
                st.stop()
        else:
            el_seed = st.number_input("Relabelling seed", 0, 1_000_000, key="orbit_el_seed",
                                      value=_common.kept("orbit_el_seed", 1, int, 0, 1_000_000))
            chosen = action.random_elements(1, int(el_seed))

all_elements = action.orbit_elements(int(n_orbit), seed=sel.order_seed).concat(chosen)  # last = the chosen one
try:
    orb = (_uploads.orbit(sel.model, sel.order_seed, sel.order, sel.projection, sel.proj_seed, sel.proj_k,
                          upload, all_elements.key()) if upload else
           _common.orbit(sel.model, sel.order_seed, sel.order, sel.projection, sel.proj_seed, sel.proj_k,
                         row, all_elements.key()))
except Exception as exc:  # shown at the page edge; the app keeps running
    st.error(f"Could not encode the orbit: {exc}")
    st.stop()

m1, m2, m3 = st.columns(3)
m1.metric("Movement of the code" if maps.trivial_action else "Invariance error of the projection",
          _common.percent(orb.invariance_error),
          help="max over the orbit of ‖s(z_g) − s(z)‖, as a percentage of the typical distance "
               "‖s(z_i) − s(z_j)‖ between two different inputs (median over random pairs)")
m2.metric("Spread of the raw codes", _common.percent(orb.raw_spread),
          help="max over the orbit of ‖z_g − z‖, as a percentage of the typical distance between the "
               "raw codes of two different inputs")
m3.metric("Group elements", f"{all_elements.n_distinct():,}",
          help="different group elements in the orbit (the one chosen above counted once, also when it is "
               "among the orbit's own)")
if maps.trivial_action:
    why = ("No latent group action: the map shows the raw codes, so this is how far the code moves over "
           "the whole orbit, not an invariance error of a projection.")
elif action.widget == "angle":
    why = ("Measured over all the rotations listed, not only the one the slider shows. For rotations off "
           "the 90° grid the input itself is interpolated, so even an exactly invariant projection of an "
           "only approximately equivariant encoder shows an error; a cross-section such as orbit alignment "
           "can also jump to another alignment when two are nearly tied.")
else:
    why = ("Relabelling the atoms is an exact symmetry of the encoder, so an invariant projection "
           "should show an error at float precision (about 1e-6 %).")
st.caption(f"Absolute invariance error: {orb.invariance_error_abs:.3g} (typical distance between two "
           f"inputs on this map: {maps.typical_distance:.3g}). {why}")

left, right = st.columns([1, 2])
with left:
    if upload:
        _common.svg(_uploads.render(sel.model, upload, chosen, (260, 220)), f"your input, {action.label(chosen)}")
        _common.svg(_uploads.render(sel.model, upload, None, (260, 220)), "your input as uploaded")
    else:
        _common.svg(entry.render_transformed(row, chosen, (260, 220)), f"input, {action.label(chosen)}")
        _common.svg(entry.render_row(row, (260, 220)), "input as stored")
with right:
    st.plotly_chart(entry.code_figure(orb.codes.values[-1], None, f"raw code after {action.label(chosen)}"),
                    width="stretch", key="orbit_code")

closed = action.widget == "angle"  # rotations trace a loop
for col, which, xy in zip(st.columns(2), ("raw", "inv"), (orb.raw_xy, orb.inv_xy)):
    with col:
        st.markdown(f"**{_common.map_title(maps, spec, which)}**")
        fig = _common.base_map(sel.model, sel.order_seed, sel.order, sel.projection, sel.proj_seed,
                               sel.proj_k, sel.color, which)
        plots.add_orbit(fig, xy[:-1], "orbit", "#d62728", closed=closed)
        plots.add_orbit(fig, xy[-1:], action.label(chosen), "#ff7f0e", star=True)
        st.plotly_chart(fig, width="stretch", key=f"orbit_{which}_map")
st.caption("Red: the codes of all transformed copies" + (" (joined in angle order)" if closed else "")
           + "; orange star: the copy shown above.")
