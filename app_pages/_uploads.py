"""Bring your own molecules and images, on the page side: the sidebar's "Your own <inputs>", the
highlighted trace on the maps, and "your inputs" as a source on Interpolation and Orbits.

Not a page. Reading, checking, encoding and placing live in :mod:`backend.user_inputs`; this file
reads widgets and draws. A session's accepted inputs are kept in ``st.session_state`` per model id
(``_user_inputs``), so they survive reruns and page switches; they are read again only when the
uploaded files or the typed text change, and forgotten when the user removes them all.
"""

from __future__ import annotations

import streamlit as st

from app_pages import _common
from backend import user_inputs, views

#: the source name Interpolation and Orbits offer for a user's inputs
SOURCE = "your inputs"
#: results tables up to this many rows are drawn as static tables (readable text), longer ones scroll
STATIC_TABLE_ROWS = 40


def _store() -> dict:
    return st.session_state.setdefault("_user_inputs", {})


def current(model_id: str) -> user_inputs.UserInputs | None:
    """The session's accepted inputs for ``model_id`` (None: none), kept in the backend's store
    as well so cached functions can find them by digest."""
    found = _store().get(model_id)
    if found is not None:
        user_inputs.remember(found)
    return found


def _update(entry, family: str, files: list[tuple[str, bytes]], typed: str) -> None:
    """Read the widgets' content when it changed; forget the inputs when the user removed them."""
    ss = st.session_state
    store, errors = _store(), ss.setdefault("_user_inputs_error", {})
    has = bool(files) or bool(str(typed).strip())
    previous = ss.get("_user_widget_last")
    ss["_user_widget_last"] = (family, has)
    if not has:
        # empty after a run that showed content for this family: the user removed it. (A widget
        # that comes back empty after a switch to another family keeps what was read before.)
        if previous == (family, True):
            store.pop(entry.id, None)
            errors.pop(entry.id, None)
        return
    digest = user_inputs.digest_of(entry.id, files, typed)
    done = store.get(entry.id)
    if (done is not None and done.digest == digest) or errors.get(entry.id, (None,))[0] == digest:
        return
    try:
        with st.spinner("Reading and checking your inputs..."):
            store[entry.id] = user_inputs.read_inputs(entry, files, typed)
        errors.pop(entry.id, None)
    except Exception as exc:  # shown at the page edge (UserInputError: a readable message)
        store.pop(entry.id, None)
        what = "" if isinstance(exc, user_inputs.UserInputError) else f"{type(exc).__name__}: "
        errors[entry.id] = (digest, what + str(exc))


def sidebar_section() -> None:
    """The "Your own molecules / images" expander at the end of the sidebar (call after
    ``_common.sidebar()``); draws nothing for models whose inputs cannot be uploaded."""
    sel = _common.current()
    try:
        entry = _common.get_entry(sel.model)
        reader = user_inputs.reader_for(entry)
    except Exception:  # no weights etc.: the page says why
        return
    if reader is None:
        return
    fam = reader.family
    with st.sidebar:
        # a constant ``expanded``: a changing one makes a new expander, which would close on a rerun
        with st.expander(f"Your own {reader.noun}", icon=":material/add_circle:"):
            st.caption(reader.help_text(entry))
            files = st.file_uploader(reader.file_label, type=list(reader.file_types), accept_multiple_files=True,
                                     key=f"user_files_{fam}")
            typed = ""
            if reader.typed_label:
                typed = st.text_area(reader.typed_label, key=f"user_typed_{fam}", height=80,
                                     placeholder="CCO c1ccoc1 C/N=C/OC")
            _update(entry, fam, [(f.name, f.getvalue()) for f in files or []], typed or "")
            error = st.session_state.get("_user_inputs_error", {}).get(entry.id)
            if error:
                st.error(error[1])
            found = current(entry.id)
            if found is None:
                return
            sources = ", ".join(dict.fromkeys(found.table["source"]))
            st.markdown(f"**{found.summary()}** ({_common.plain(sources)}). Parsed ones are the diamonds on "
                        f"both maps (*Latent maps*) and the source *{SOURCE}* on *Interpolation* and *Orbits*.")
            # the sidebar is too narrow for the table: one short line per rejected (or adjusted) row
            table = found.results_table()
            for heading, lines in result_lines(table):
                st.markdown(f"**{heading}**\n" + "\n".join(f"- {line}" for line in lines))
            st.caption("Every row with its input and result: *Your inputs, row by row* on the *Latent maps* "
                       "page, under the maps.")


#: the sidebar lists at most this many rows per kind (rejected, adjusted); the table has all
SIDEBAR_LINES = 12
#: inputs and reasons longer than this are shortened in the sidebar's lines (the table has them whole)
SHORT_INPUT = 24
SHORT_REASON = 140


def _short(text: str, limit: int = SHORT_INPUT) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def result_lines(table) -> list[tuple[str, list[str]]]:
    """Short Markdown lines for the sidebar from a results table (``UserInputs.results_table``):
    ``[("Rejected", ["line 3 · `CCS` (thioethanol): element not in C/N/O/F: ..."]), ("Adjusted", [...])]``
    for the rejected rows and the parsed rows with a note (what was normalised or resized), each
    at most :data:`SIDEBAR_LINES` lines plus one that counts the rest; kinds without rows left out.
    A rejection's reason is cut at its first ``"; "`` (the advice after it is in the full table).
    The row is named by its line (and its file when there are several; an image by its file)."""
    several = len(set(table["source"])) > 1 if len(table) else False
    out = []
    for heading, prefix in (("Rejected", "rejected: "), ("Adjusted", "parsed · ")):
        rows = [r for r in table.itertuples(index=False) if str(r.result).startswith(prefix)]
        lines = []
        for r in rows[:SIDEBAR_LINES]:
            line = int(r.line) if str(r.line).lstrip("-").isdigit() else 0
            where = (f"{r.source} line {line}" if several else f"line {line}") if line > 0 else str(r.source)
            what = _short(r.input).replace("`", "'")
            named = str(r.name) and str(r.name) not in (str(r.input), str(r.source))
            name = f" ({_common.plain(_short(r.name, 20))})" if named else ""
            why = str(r.result)[len(prefix):]
            if heading == "Rejected":  # the reason, without the advice after it (a note lists all it did)
                why = why.split("; ")[0]
            lines.append(f"{_common.plain(where)} · `{what}`{name}: {_common.plain(_short(why, SHORT_REASON))}")
        if len(rows) > SIDEBAR_LINES:
            lines.append(f"... and {len(rows) - SIDEBAR_LINES} more (see the full table)")
        if lines:
            out.append((heading, lines))
    return out


def results_section(sel) -> None:
    """The full per-row results table of the session's inputs (an expander in the page's main
    area, where its ``input`` and ``result`` columns have room); nothing without inputs."""
    found = current(sel.model)
    if found is None or not len(found.table):
        return
    # a constant label and ``expanded``: a changing one would make a new expander on each rerun
    with st.expander("Your inputs, row by row", icon=":material/table_rows:"):
        st.caption(f"{found.summary()}: every line of your files and typed text, what was read and why a row "
                   "was rejected or adjusted.")
        table = found.results_table()
        if len(table) <= STATIC_TABLE_ROWS:
            st.table(table.style.hide(axis="index"))
        else:
            st.dataframe(table, hide_index=True, key=f"user_results_{found.family}")


@st.cache_data(show_spinner="Placing your inputs on the maps...", max_entries=16)
def _placement(model_id: str, seed: int, order: str, projection: str, proj_seed: int, proj_k: int, digest: str):
    entry = _common.get_entry(model_id)
    maps = _common.get_maps(model_id, seed, order, projection, proj_seed, proj_k)
    return user_inputs.place(entry, _common._encoded(model_id, seed), maps, order, projection,
                             user_inputs.lookup(digest), seed, proj_seed, proj_k)


def add_to_map(fig, sel, which: str):
    """``fig`` (a map of ``which`` in {"raw", "inv"}) with the session's inputs for the selected
    model as the highlighted trace; unchanged when there are none."""
    found = current(sel.model)
    if found is None or not len(found):
        return fig
    try:
        placed = _placement(sel.model, sel.order_seed, sel.order, sel.projection, sel.proj_seed, sel.proj_k,
                            found.digest)
    except Exception as exc:  # shown at the page edge; the map is drawn without them
        st.warning(f"Your inputs could not be placed on this map ({type(exc).__name__}: {exc}).")
        return fig
    entry = _common.get_entry(sel.model)
    table = _common._encoded(sel.model, sel.order_seed).table
    return user_inputs.add_to_map(fig, found, placed, table, _common.color_option(entry, sel.color), which)


def map_caption(sel) -> None:
    """One caption under the maps about the diamonds (nothing without inputs)."""
    found = current(sel.model)
    if found is None or not len(found):
        return
    st.caption(f"Diamonds with a magenta outline: your {len(found)} input(s) (sidebar, *Your own ...*), encoded "
               f"by this model ({_common.get_entry(sel.model).order_labels.get(sel.order, sel.order)}) and placed "
               "with the maps' fitted PCA; filled with their colour value where it is known (an input the data "
               "set holds takes its stored code and values), grey where it is not. Hover for names.")


def sources(model_id: str) -> list[str]:
    """``[SOURCE]`` when the session has accepted inputs for ``model_id``, else ``[]``."""
    found = current(model_id)
    return [SOURCE] if found is not None and len(found) else []


def choose(model_id: str, key: str, label: str, default: int = 0) -> tuple[str, int]:
    """A select box over the accepted inputs; returns the endpoint key ``(digest, index)``."""
    found = current(model_id)
    options = list(range(len(found)))
    index = st.selectbox(label, options, index=min(default, len(options) - 1), key=f"{key}_{found.digest[:10]}",
                         format_func=lambda i: f"{i + 1}. {found.labels[i]}")
    return found.digest, int(index)


def title(upload: tuple[str, int]) -> str:
    """Caption of an uploaded input given as ``(digest, index)``."""
    return user_inputs.title(user_inputs.lookup(upload[0]), upload[1])


def render(model_id: str, upload: tuple[str, int], element=None, size: tuple[int, int] | None = None) -> str:
    """SVG of an uploaded input as uploaded, or transformed by one input-group ``element``."""
    return user_inputs.render(_common.get_entry(model_id), user_inputs.lookup(upload[0]), upload[1], element, size)


@st.cache_data(show_spinner="Encoding the orbit...", max_entries=32)
def orbit(model_id: str, seed: int, order: str, projection: str, proj_seed: int, proj_k: int,
          upload: tuple, elements: tuple):
    """The orbit of an uploaded input ``(digest, index)`` under ``elements`` on both maps."""
    entry = _common.get_entry(model_id)
    maps = _common.get_maps(model_id, seed, order, projection, proj_seed, proj_k)
    item = user_inputs.lookup(upload[0]).item(upload[1])
    return views.orbit_view(entry, maps, _common._encoded(model_id, seed), order, projection, None,
                            elements, proj_seed, proj_k, inputs=item)


def traces(sel, which: str) -> list:
    """The highlighted trace of the session's inputs as a list of Plotly traces (empty without
    inputs), for a map drawn by the map component (``map_chart.with_traces``)."""
    import plotly.graph_objects as go

    return list(add_to_map(go.Figure(), sel, which).data)
