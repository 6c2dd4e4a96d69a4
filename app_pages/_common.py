"""Shared page plumbing: the sidebar, cached loaders, and error display.

Not a page itself (``st.navigation`` in ``app.py`` lists the pages). Models and
encoded data sets live in ``st.cache_resource`` (shared, read-only); maps are
``st.cache_data`` keyed by hashable ids only. No array maths here.
"""

from __future__ import annotations

from dataclasses import dataclass

import logging
import math
import os

import streamlit as st

from app_pages import _codes
from backend import density, plots, registry, views
from backend.latents import NODE_ORDERS

DEFAULTS = {"model": next(iter(registry.MODELS)), "projection": "sort", "order": "random",
            "order_seed": 0, "proj_seed": 0, "proj_k": 0, "color": "gap"}
INT_KEYS = ("order_seed", "proj_seed", "proj_k")
INT_MAX = {"order_seed": 10_000, "proj_seed": 10_000, "proj_k": 4096}


def read_only() -> bool:
    """True when ``$ELX_READ_ONLY`` is ``1`` (or ``true``/``yes``): a public, read-only
    deployment. Seeds are fixed to 0, ``k`` is capped at :data:`READ_ONLY_K_LIMIT`, the
    Downstream page's live evaluation is off, and nothing is written outside the cache folder."""
    return os.environ.get("ELX_READ_ONLY", "").strip().lower() in ("1", "true", "yes")


#: largest k of random-template projections in read-only mode
READ_ONLY_K_LIMIT = {"max_filtering": 256, "sorted_coorbits": 64}


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


@st.cache_resource(show_spinner=False, max_entries=16)  # bounded: uploaded codes come and go
def get_entry(model_id: str):
    """Registry entry (holds the model in eval mode), shared by all sessions."""
    return registry.get(model_id)


def _ensure_data(entry) -> None:
    key = f"_data_ok_{entry.id}"
    if st.session_state.get(key):
        return
    holder = st.empty()  # the message disappears once the data are there
    with holder.status(entry.data_loading_message(), expanded=False):
        entry.dataset()
    holder.empty()
    st.session_state[key] = True


def encoding_progress_label(fraction: float, msg: str) -> str:
    """Text of the first-start progress bar: the overall fraction covers two passes (inputs as
    stored, then re-presented), so the label says which pass is running."""
    part = 1 if fraction < 0.5 else 2
    return f"pass {part} of 2 · {100 * min(fraction, 1.0):.0f} % overall · {msg}"


def waiting_label(msg: str) -> str:
    """Text of the progress bar of a visitor whose first start waits for another visitor's (or
    process's) encode of the same data set; ``msg`` names the file (:func:`backend.cache.locked`)."""
    return f"Another visitor is encoding this data set; waiting for it to finish... ({msg})"


def load_encoded(model_id: str, seed: int):
    """All codes of the model's data set, encoding with a progress bar on the first start; a
    visitor who waits for someone else's encode sees :func:`waiting_label` in that bar."""
    from backend.cache import held_in_memory

    entry = get_entry(model_id)
    _ensure_data(entry)
    path = entry.encoded_cache_path(seed)
    if not path.exists() and not held_in_memory(path):
        holder = st.empty()
        with holder.status(f"Encoding every {entry.item_noun} with {entry.id} (first start only)...",
                           expanded=True) as status:
            bar = st.progress(0.0)

            def report(fraction: float, msg: str) -> None:
                bar.progress(min(fraction, 1.0), text=encoding_progress_label(fraction, msg))

            def waiting(msg: str) -> None:
                bar.progress(0.0, text=waiting_label(msg))

            entry.encode_dataset(seed, progress=report, on_wait=waiting)
            status.update(label="Encoded; fitting the maps...", state="complete")
        holder.empty()
    return _encoded(model_id, seed)


@st.cache_resource(show_spinner="Reading the cached codes...", max_entries=4)
def _encoded(model_id: str, seed: int):
    return get_entry(model_id).encode_dataset(seed)


@st.cache_resource(show_spinner="Fitting PCA maps...", max_entries=16)
def get_maps(model_id: str, seed: int, order: str, projection: str, proj_seed: int, proj_k: int = 0):
    """Raw and invariant PCA maps, fitted once per (model, seeds, order, projection, k).

    Kept with ``st.cache_resource`` (shared, read-only: pages never modify a ``Maps``), so a
    rerun does not unpickle the maps (900 MB at 10 M codes with ``st.cache_data``)."""
    return views.compute_maps(_encoded(model_id, seed), order, projection, proj_seed, proj_k)


def base_map(model_id: str, seed: int, order: str, projection: str, proj_seed: int, proj_k: int,
             color: str, which: str):
    """The lean Plotly map of all codes, ``which`` in {"raw", "inv"}: a copy of the figure built
    once per setting, which the page may add traces to. Its title is :func:`map_title`, written
    by the page above the chart (the Plotly toolbar would cover a title inside the figure). Above
    :data:`backend.density.DENSITY_THRESHOLD` codes it is a density raster instead.

    The figure is kept with ``st.cache_resource`` and copied with ``go.Figure(fig)`` (0.05 s at
    130k points) rather than kept with ``st.cache_data``, whose unpickling re-validates it
    (0.47 s per map and rerun, measured on the loaded 2-core VM)."""
    import plotly.graph_objects as go

    return go.Figure(_base_map(model_id, seed, order, projection, proj_seed, proj_k, color, which))


@st.cache_resource(show_spinner="Drawing the map...", max_entries=8)
def _base_map(model_id: str, seed: int, order: str, projection: str, proj_seed: int, proj_k: int,
              color: str, which: str):
    entry = get_entry(model_id)
    maps = get_maps(model_id, seed, order, projection, proj_seed, proj_k)
    m = maps.raw if which == "raw" else maps.inv
    table, option = _encoded(model_id, seed).table, color_option(entry, color)
    if density.use_density(len(m.coords)):
        return density.density_figure(m.coords, plots.color_column(table, option)[0], option)
    return plots.latent_map(m.coords, table, option)


@st.cache_resource(show_spinner="Drawing the map...", max_entries=8)
def map_payload(model_id: str, seed: int, order: str, projection: str, proj_seed: int, proj_k: int,
                color: str, which: str):
    """What the map component (``app_pages/components/map_chart``) is sent for :func:`base_map`'s
    figure: built once per setting and kept, so a rerun that does not change a map costs nothing
    (the same bytes; Streamlit does not even re-send them)."""
    from app_pages.components import map_chart

    return map_chart.payload(_base_map(model_id, seed, order, projection, proj_seed, proj_k, color, which))


def map_title(maps, spec, which: str) -> str:
    """Title of the raw (``"raw"``) or projected (``"inv"``) map, honest about what it shows.

    The right-hand map is called an *invariant view* only when the projection is
    invariant to a non-trivial latent action and measured so (``maps.measured_invariant``).
    """
    m = maps.raw if which == "raw" else maps.inv
    var = f"{100 * m.explained_variance_ratio.sum():.0f} % of the variance"
    if which == "raw":  # "equivariant" only where the model has a latent group action
        return f"{'PCA' if maps.trivial_action else 'Equivariant view: PCA'} of the raw codes ({var})"
    if maps.trivial_action:
        name = "Same codes again (identity): this model has no latent group action"
    elif maps.measured_invariant:
        name = f"Invariant view: PCA of {spec.label.lower()}"
    else:
        name = f"PCA of {spec.label.lower()}, measured NOT invariant"
    if maps.projected.shape[1] == 1:
        return f"{name} (one feature: drawn along PC 1, PC 2 is 0)"
    return f"{name} ({var})"


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
    """The orbit of one input under ``elements`` (``GroupElements.key()``, hashable) on both maps."""
    entry = get_entry(model_id)
    maps = get_maps(model_id, seed, order, projection, proj_seed, proj_k)
    return views.orbit_view(entry, maps, _encoded(model_id, seed), order, projection, row,
                            elements, proj_seed, proj_k)


# Random-template projections whose fit cost grows with k: the largest k the sidebar offers,
# and the number of features per template (sorted coorbits keep all N sorted values).
# Measured on the 2-core development VM, one thread, 5,000 codes (16, 8): fit + two
# transforms + PCA take about 3.5e-7 s per (code x feature): max filtering k = 4096 in 6.9 s,
# sorted coorbits k = 1024 (8,192 features) in 5.7 s (randomized PCA above 256 features).
K_LIMIT = {"max_filtering": 4096, "sorted_coorbits": 1024}
SECONDS_PER_CODE_FEATURE = 8e-7  # measured 3.5e-7 idle; a fresh-clone user saw 36 s for 8 s estimated


_MISSING = object()


def _snapshot_url() -> dict:
    """The URL's query parameters as they were when this session started (a shared link);
    page-level keys are read from here, since the sidebar rewrites the URL on every run."""
    ss = st.session_state
    if "_url_at_start" not in ss:
        ss["_url_at_start"] = {k: st.query_params.get(k) for k in st.query_params}
    return ss["_url_at_start"]


def _history_url() -> dict | None:
    """The URL's query parameters when this run is a browser Back/Forward (history navigation),
    else None. On such a run the URL wins over the session's state: the browser shows the
    restored entry's URL, and the app must show what that URL says (otherwise the run writes the
    current state over the restored entry, and Back seems to do nothing)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is None or not getattr(ctx, "is_history_navigation", False):
        return None
    return {k: st.query_params.get(k) for k in st.query_params}


def _follow_history_navigation() -> None:
    """On a Back/Forward run, set the sidebar's values from the restored URL (before its widgets
    are drawn; values the sidebar does not offer are replaced there as for any link). Parameters
    the URL lacks keep their current values."""
    url = _history_url()
    if not url:
        return
    for key, default in DEFAULTS.items():
        raw = url.get(key)
        if raw is None:
            continue
        if key in INT_KEYS:
            value, note = _parse_int(raw, default, 0, INT_MAX[key])
            if note:
                continue
        else:
            value = str(raw)
        if st.session_state.get(key) != value:
            st.session_state[key] = value


def _parse_int(value, default: int, lo: int, hi: int) -> tuple[int, str | None]:
    """An integer from a URL value; out-of-range or unparsable values give the default and a
    message (never a silent replacement)."""
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return default, f"ignored {value!r}: not a whole number"
    if not lo <= number <= hi:
        return default, f"ignored {number}: outside {lo}..{hi}"
    return number, None


def _init_state() -> None:
    url = _snapshot_url()
    notes = []
    for key, default in DEFAULTS.items():
        if key in st.session_state:
            continue
        value = url.get(key, default)
        if value is None:
            value = default
        if key in INT_KEYS:  # a hand-edited URL must not crash the number inputs
            value, note = _parse_int(value, default, 0, INT_MAX[key])
            if note:
                notes.append(f"`{key}` in the link: {note}")
        st.session_state[key] = value
    if notes:
        st.session_state["_url_notes"] = notes


def percent(fraction: float) -> str:
    """``fraction`` (1.0 = 100 %) as a percentage a person reads at a glance: ``"130 %"``,
    ``"9 %"``, ``"0.31 %"``, ``"3.1e-05 %"`` (two significant digits below 10 %, whole numbers
    above; never ``1.3e+02 %``)."""
    v = 100.0 * float(fraction)
    if not math.isfinite(v):
        return f"{v} %"
    if abs(v) >= 10:
        return f"{v:,.0f} %"
    if abs(v) >= 0.01 or v == 0:
        return f"{v:.2g} %"
    return f"{v:.1e} %"


def kept(key: str, default, kind: type = str, lo: int = 0, hi: int = 10**9):
    """The value a page-level widget with ``key=key`` should start from; makes it survive page
    switches and live in the URL.

    Pass the result as the widget's ``value=`` (or ``index=`` via :func:`kept_index`) together
    with ``key=key``. While the widget is on the page Streamlit ignores it and keeps the user's
    value; when the widget comes back (after a page switch, or after an error hid it) it starts
    from, in order: the value it had when it was last drawn, the link the session started from,
    ``default``. Nothing is written to the widget's own state, so the browser and the server
    always agree on the value shown. Integers from a link are range-checked (``lo..hi``); a
    bad one is reported next to the widget and replaced by ``default``. On a Back/Forward run the
    restored URL's value (where it has one) wins over all of these, the widget's own state
    included.
    """
    ss = st.session_state
    remembered = ss.setdefault("_kept", {})
    restored = _from_history(key, kind, lo, hi)
    if restored is not _MISSING:  # Back/Forward: the restored URL's value, also in the widget
        value = remembered[key] = restored
        _restore_widget(key, value)
    elif key in ss:
        value = ss[key]
    elif key in remembered:
        value = remembered[key]
    else:
        raw = _snapshot_url().get(key)
        if raw is None:
            value = default
        elif kind is int:
            value, note = _parse_int(raw, default, lo, hi)
            if note:
                st.warning(f"`{key}` in the link: {note}; using {default}.")
        else:
            value = str(raw)
    ss.setdefault("_page_keys", set()).add(key)
    ss.setdefault("_page_keys_this_run", set()).add(key)
    _set_url(key, value)
    return value


def _warn_link_choice(key: str, given, options: list, used) -> None:
    """Say at the top of the page that the link's ``key=given`` is not one of ``options`` and
    that ``used`` is shown instead (a hand-edited or foreign link is never replaced silently)."""
    st.warning(f"`{key}` in the link: ignored {given!r}, not one of "
               f"{', '.join(repr(o) for o in options)}; using {used!r}.", icon=":material/link:")


def kept_index(key: str, options: list, default) -> int:
    """:func:`kept` for a radio or select box: the index of the option to start from. A value
    that is not among ``options`` (a stale choice, a hand-edited link) falls back to
    ``default`` (or the first option), and the widget's stale state is dropped."""
    fresh = key not in st.session_state and key not in st.session_state.get("_kept", {})
    value = kept(key, default)
    if value not in options:
        if fresh and _snapshot_url().get(key) == value:  # first drawn from the session's link
            _warn_link_choice(key, value, options, default if default in options else options[0])
        if key in st.session_state:
            del st.session_state[key]
        value = default if default in options else options[0]
        st.session_state["_kept"][key] = value
        _set_url(key, value)
    return options.index(value)


def kept_radio(label: str, options: list, key: str, default, scope: str, **kwargs):
    """A radio whose options depend on ``scope`` (the model): one widget per scope, one value.

    A radio whose option labels change under one widget key showed no option selected in the
    browser after a model switch, so the widget's key is ``f"{key}__{scope}"``, while the value
    lives (and travels in the URL) under ``key``, as with :func:`kept`: a switch keeps the
    choice where the new model offers it and falls back to ``default`` (or the first option)
    where it does not. ``kwargs`` go to ``st.radio``. Returns the chosen option.
    """
    ss = st.session_state
    remembered = ss.setdefault("_kept", {})
    widget_key = f"{key}__{scope}"
    value = ss.get(widget_key)
    restored = _from_history(key, str)
    if restored in options and restored != value:  # Back/Forward: the restored URL's choice
        value = remembered[key] = restored
        _restore_widget(widget_key, restored)
    if value not in options:
        ss.pop(widget_key, None)  # stale (not offered any more): the widget starts afresh
        link = _snapshot_url().get(key)
        from_link = key not in remembered and link is not None  # first drawn from the session's link
        value = remembered.get(key, link if link is not None else default)
        if value not in options:
            value = default if default in options else options[0]
            if from_link:  # a hand-edited or foreign link: say so instead of replacing it silently
                _warn_link_choice(key, link, options, value)
    choice = st.radio(label, options, key=widget_key, index=options.index(value), **kwargs)
    remembered[key] = choice
    ss.setdefault("_page_keys_this_run", set()).add(key)
    _set_url(key, choice)
    return choice


#: widget keys whose state a Back/Forward run set from the URL (see :func:`_restore_widget`)
_RESTORED_KEYS: set[str] = set()


class _RestoredWidgetFilter(logging.Filter):
    """Drops Streamlit's warning that a widget "was created with a default value but also had its
    value set via the Session State API" for widgets a Back/Forward run restored on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not (args and args[0] in _RESTORED_KEYS
                    and str(record.msg).startswith("The widget with key"))


logging.getLogger("streamlit.elements.lib.policies").addFilter(_RestoredWidgetFilter())


def _restore_widget(widget_key: str, value) -> None:
    """Set a drawn widget's state to ``value`` (before the widget call), so that the browser shows
    the value the restored URL asks for instead of the one it had before Back/Forward."""
    if widget_key in st.session_state and st.session_state[widget_key] != value:
        _RESTORED_KEYS.add(widget_key)
        st.session_state[widget_key] = value


def _from_history(key: str, kind: type = str, lo: int = 0, hi: int = 10**9):
    """The value of a page-level ``key`` in the URL of a Back/Forward run; ``_MISSING`` on other
    runs, when the URL lacks ``key``, or when its integer is out of ``lo..hi``."""
    url = _history_url()
    raw = None if url is None else url.get(key)
    if raw is None:
        return _MISSING
    if kind is int:
        value, note = _parse_int(raw, 0, lo, hi)
        return _MISSING if note else value
    return str(raw)


def _set_url(key: str, value) -> None:
    """Queue one URL parameter for :func:`finish_url`, only when it changes. All of a run's
    changes are written in one message at the end of the run: each URL update adds a browser
    history entry, and the Back button should undo a change, not one parameter of it."""
    if st.query_params.get(key) != str(value):
        st.session_state.setdefault("_url_pending", {})[key] = str(value)


def finish_url() -> None:
    """After the page ran (call at the end of ``app.py``, also when a page stopped early): write
    the run's queued URL parameters and drop those of other pages, in ONE update (one browser
    history entry), and only when something changed."""
    pending = st.session_state.pop("_url_pending", {})
    keep = set(DEFAULTS) | st.session_state.get("_page_keys_this_run", set())
    current = {k: st.query_params.get(k) for k in st.query_params}
    target = {k: v for k, v in {**current, **pending}.items() if k in keep or k in pending}
    if target != current:
        st.query_params.from_dict(target)


def finish_fragment_url() -> None:
    """:func:`finish_url` for the end of an ``st.fragment``: a fragment rerun (a slider inside
    it moved) does not reach the end of ``app.py``, so its queued URL changes are written here.
    Does nothing during a full run, which writes the URL once, at its end."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is not None and ctx.fragment_ids_this_run:
        finish_url()


#: Installed once per browser tab by :func:`one_history_entry_per_page_switch`. A click in the page
#: navigation makes Streamlit push the new page's bare URL (``/orbits``: the query is dropped), and
#: the run's URL update then pushes ``/orbits?model=...`` on top: two entries, so the first Back
#: press seemed to do nothing. A push to the same path from a URL without a query replaces that
#: bare entry instead (also for a bare link opened by hand); every other push is left alone.
_HISTORY_SCRIPT = """<script>
(() => {
  const w = window.parent && window.parent !== window ? window.parent : window;
  if (w.__elxHistoryPatched) return;
  w.__elxHistoryPatched = true;
  const h = w.history, push = h.pushState.bind(h);
  h.pushState = function (state, title, url) {
    try {
      const next = new URL(url, w.location.href);
      if (!w.location.search && next.pathname === w.location.pathname && next.search) {
        return h.replaceState(state, title, url);
      }
    } catch (e) { /* fall through to the plain push */ }
    return push(state, title, url);
  };
})();
</script>"""


def one_history_entry_per_page_switch() -> None:
    """Make a page switch add one browser history entry, not two (see :data:`_HISTORY_SCRIPT`);
    call once per full run, in the sidebar (it takes no room there)."""
    with st.sidebar:
        st.html(_HISTORY_SCRIPT, unsafe_allow_javascript=True)


def _remember_page_state() -> None:
    """Copy every kept page-level value to a non-widget key (widget state is dropped when
    its page is not drawn); runs at the start of each script run."""
    ss = st.session_state
    kept = ss.setdefault("_kept", {})
    for key in ss.get("_page_keys", set()):
        if key in ss:
            kept[key] = ss[key]


def expected_fit_seconds(projection_key: str, k: int, n_codes: int, code_shape: tuple) -> float | None:
    """Rough wall time (s) to fit a random-template projection with ``k`` templates on
    ``n_codes`` codes of shape ``code_shape`` = (c, N), transform both presentations and fit
    the PCA map (None for projections without templates). Calibrated on the development VM
    (:data:`SECONDS_PER_CODE_FEATURE`); a busy machine takes two to three times longer."""
    if projection_key not in K_LIMIT:
        return None
    features = k * (code_shape[-1] if projection_key == "sorted_coorbits" else 1)
    return SECONDS_PER_CODE_FEATURE * n_codes * features


def _replaced_from_link(key: str, replacement, allowed) -> None:
    """Note, for the sidebar, that a value a shared link gave for ``key`` is not valid here (a
    value that is merely not offered by the newly chosen model is replaced without a note)."""
    if st.session_state.get("_sidebar_drawn"):  # only the link the session started from
        return
    given = _snapshot_url().get(key)
    if given is not None and given == st.session_state.get(key) and given not in allowed:
        notes = st.session_state.setdefault("_url_notes", [])
        notes.append(f"`{key}` in the link: ignored {given!r}, not one of {', '.join(map(str, allowed))}; "
                     f"using {replacement!r}.")


def sidebar() -> Selection:
    """Draw the shared sidebar once (called by ``app.py``) and mirror it to the URL."""
    _init_state()
    _follow_history_navigation()  # Back/Forward: the restored URL wins over the session's state
    _remember_page_state()
    _codes.prepare("model" in _snapshot_url())  # codes named by --codes / ELX_CODES
    models, missing = _codes.visible(registry.available()), registry.unavailable()
    if not models:  # nothing to show: say why instead of failing on every page
        st.error("No model can be loaded:\n\n" + "\n".join(f"* {r}" for r in missing.values())
                 + "\n\nYou can still upload your own latent codes in the sidebar (*Your own codes*).")
        with st.sidebar:
            _codes.sidebar_section()
        st.stop()
    if st.session_state["model"] not in models:
        _replaced_from_link("model", models[0], models)
        st.session_state["model"] = models[0]
    if read_only():  # fixed seeds (the widgets below are disabled)
        st.session_state["order_seed"] = st.session_state["proj_seed"] = 0
    if st.session_state["order"] not in NODE_ORDERS:
        _replaced_from_link("order", DEFAULTS["order"], NODE_ORDERS)
        st.session_state["order"] = DEFAULTS["order"]
    with st.sidebar:
        st.header("Model & projection")
        # a radio, not a select box: long model names wrap instead of being cut off
        st.radio("Model", models, key="model", format_func=lambda m: registry.get(m).label)
        for model_id, reason in missing.items():
            st.warning(f"**{registry.get(model_id).label}** is unavailable: {reason}")
        _codes.sidebar_section()  # "Your own codes", right under the models (a stable place: it stays open)
        entry = get_entry(st.session_state["model"])
        try:
            specs = entry.projections()
            colors = entry.color_options()
        except registry.WeightsNotFoundError as exc:
            st.error(str(exc))
            st.stop()
        keys = [s.key for s in specs]
        if st.session_state["projection"] not in keys:
            _replaced_from_link("projection", keys[0], keys)
            st.session_state["projection"] = keys[0]
        st.selectbox("Invariant projection", keys, key="projection",
                     format_func=lambda k: next(s.label for s in specs if s.key == k),
                     help="\n".join(f"- **{s.label}**: {s.description}" for s in specs))
        # one radio per model: its options read differently per model ("random node order",
        # "rotated again"), and a radio whose labels change under one key showed no option
        # selected in the browser; the shared choice lives in ``order``
        order_key = f"order_{entry.id}"
        if st.session_state.get(order_key, st.session_state["order"]) != st.session_state["order"]:
            del st.session_state[order_key]  # changed under another model: start from the shared one

        def _order_changed(k=order_key):
            st.session_state["order"] = st.session_state[k]

        st.radio(entry.presentation_label, NODE_ORDERS, key=order_key, horizontal=True,
                 index=NODE_ORDERS.index(st.session_state["order"]), on_change=_order_changed,
                 format_func=lambda k: entry.order_labels.get(k, k), help=entry.order_help)

        st.number_input("Presentation seed", min_value=0, max_value=10_000, step=1, key="order_seed",
                        help="Seed of the random node orders / extra rotations.", disabled=read_only())
        st.number_input("Projection seed", min_value=0, max_value=10_000, step=1, key="proj_seed",
                        help="Seed of random projections (unused by sorting and pooling).",
                        disabled=read_only())
        proj_key = st.session_state["projection"]
        if "k" in views.projection(proj_key).get_params():
            limit = (READ_ONLY_K_LIMIT if read_only() else K_LIMIT).get(proj_key, 4096)
            if st.session_state["proj_k"] > limit:
                st.session_state["proj_k"] = limit
            st.number_input(f"Random templates k (0 = 2·c·N; at most {limit})", min_value=0,
                            max_value=limit, step=1, key="proj_k",
                            help="Number of random templates of max filtering / sorted coorbits. The "
                                 "fit's cost grows linearly with k (sorted coorbits also multiply the "
                                 "features by N), so the sidebar caps it.")
            try:
                shape = tuple(entry.latent_action.code_shape)
                k_eff = st.session_state["proj_k"] or 2 * int(math.prod(shape))
                secs = expected_fit_seconds(proj_key, k_eff, len(entry.dataset().table), shape)
            except Exception:  # no estimate without the data; the fit still runs
                secs = None
            if secs is not None:
                msg = (f"Expected fit time with k = {k_eff}: about {max(secs, 1):.0f} s on a 2-core "
                       "machine, up to 2-4 times longer when it is busy (first use of this setting; "
                       "then cached).")
                (st.warning if secs > 20 else st.caption)(msg)
        color_keys = [c.key for c in colors]
        if st.session_state["color"] not in color_keys:  # the default colour where this model has it
            fallback = DEFAULTS["color"] if DEFAULTS["color"] in color_keys else color_keys[0]
            _replaced_from_link("color", fallback, color_keys)
            st.session_state["color"] = fallback
        st.selectbox("Colour by", color_keys, key="color",
                     format_func=lambda k: next(f"{c.label} [{c.unit}]" for c in colors if c.key == k))
        if entry.validity_note:
            st.caption(f"Validity: {entry.validity_note}.")
        st.session_state["_sidebar_drawn"] = True
    # what a shared link asked for but could not get: at the top of the page, where it is seen
    # (at the bottom of a long sidebar it was below the fold)
    for note in st.session_state.pop("_url_notes", []):
        st.warning(note, icon=":material/link:")
    sel = Selection(**{k: st.session_state[k] for k in DEFAULTS})
    st.session_state["_page_keys_this_run"] = set()
    for key, value in sel.__dict__.items():
        _set_url(key, value)
    return sel


def current() -> Selection:
    """The sidebar's current selection (for pages)."""
    _init_state()
    return Selection(**{k: st.session_state[k] for k in DEFAULTS})


def color_option(entry, key: str):
    """The entry's colour option with this key."""
    return next(c for c in entry.color_options() if c.key == key)


def map_selection(model_id: str) -> tuple[list[int], int]:
    """Rows selected on a map of ``model_id`` (first ones only for very large selections) and
    the total count; empty when the selection was made on another model's map."""
    stored = st.session_state.get("map_selection")
    if not isinstance(stored, dict) or stored.get("model") != model_id:
        return [], 0
    return list(stored["rows"]), int(stored["total"])


def set_map_selection(model_id: str, rows, total: int | None = None) -> None:
    """Remember a map selection together with the model whose map it was made on."""
    rows = [int(r) for r in rows]
    st.session_state["map_selection"] = {"model": model_id, "rows": rows,
                                         "total": len(rows) if total is None else int(total)}


def _scalable(markup: str) -> str:
    """An SVG that scales down to its column (it keeps its ``viewBox``, so nothing is clipped)."""
    head_end = markup.find(">")
    if markup.startswith("<svg") and head_end > 0 and "viewBox" in markup[:head_end]:
        markup = markup[:head_end] + ' style="max-width:100%;height:auto"' + markup[head_end:]
    return markup


def figure_html(markup: str, caption: str = "") -> str:
    """HTML of one SVG drawing with its caption (escaped), for :func:`html_row`."""
    import html

    return (f'<figure style="margin:0 0 0.5rem 0;flex:1;min-width:0"><div style="line-height:0">'
            f'{_scalable(markup)}</div><figcaption style="font-size:0.85rem;color:rgba(49,51,63,0.6);'
            f'margin-top:0.25rem">{html.escape(caption)}</figcaption></figure>')


def html_row(figures: list[str], heading: str | None = None) -> None:
    """Several drawings side by side (and a heading) as ONE page element: a slider step that
    redraws them sends one small delta instead of one per drawing and caption."""
    import html

    head = f'<h3 style="padding-top:0.5rem">{html.escape(heading)}</h3>' if heading else ""
    st.markdown(f'{head}<div style="display:flex;gap:0.75rem">{"".join(figures)}</div>',
                unsafe_allow_html=True)


def svg(markup: str, caption: str | None = None) -> None:
    """Show an SVG drawing (and a caption), scaled down to the column's width if it is wider."""
    st.markdown(f'<div style="line-height:0">{_scalable(markup)}</div>', unsafe_allow_html=True)
    if caption:
        st.caption(caption)


def plain(text: str) -> str:
    """``text`` escaped for Streamlit Markdown (captions, labels), so that a SMILES such as
    ``C[N+](C)(C)C`` shows as typed instead of becoming a link, and ``*``, ``_``, ``$`` or
    ``~`` in user input are not read as emphasis, LaTeX or strike-through."""
    import re

    return re.sub(r"([\\`*_\[\]()#$~|<>:])", r"\\\1", str(text))


def yes_no(flag: bool) -> str:
    """``yes`` / ``no`` as a word with a Material icon (Streamlit ships the icon font, so it
    renders without an emoji font)."""
    return ":green[:material/check: yes]" if flag else ":red[:material/close: no]"


def tag_badges(maps) -> str:
    """Markdown with the projection's properties: declared ones w.r.t. the latent action,
    and the measured invariance relative to the typical distance between two inputs."""
    if maps.trivial_action:
        return ("**No latent group action**: nothing is known about how this model's code moves "
                "when the input is transformed, so there is no invariant projection; the right-hand "
                "map shows the same codes (identity). " + invariance_text(maps))
    t = maps.tags
    flags = (("invariant", t.invariant), ("lossless", t.lossless), ("isometric", t.isometric),
             ("decodable", t.cross_section))
    declared = " · ".join(f"{name}: {yes_no(v)}" for name, v in flags)
    return f"Declared for the latent action: {declared}. {invariance_text(maps)}"


def invariance_text(maps) -> str:
    """One sentence: how far re-presenting every input moves the projected code, relative
    to the typical distance between the projections of two different inputs."""
    if not (maps.typical_distance > 0):
        return ""
    verdict = yes_no(maps.measured_invariant)
    p90 = maps.invariance_rel_p90_or_median
    text = (f"Measured: re-presenting every input moves it on this map's features by "
            f"{percent(maps.invariance_rel_median)} (median) / {percent(p90)} (90th percentile) / "
            f"{percent(maps.invariance_rel_max)} (max) of the typical distance between two different inputs "
            f"({maps.typical_distance:.3g}); invariant as measured for 9 in 10 inputs "
            f"(90th percentile ≤ 5 %): {verdict}.")
    if maps.trivial_action:
        text += (" This model has no latent group action: the map shows its raw codes, and this measures "
                 "how far the encoder's code moves when the input is transformed.")
    elif maps.tags.invariant and not maps.measured_invariant:
        text += (" The projection is exactly invariant to the latent action; what moves is the encoder, "
                 "which is only approximately equivariant to this transformation of the inputs (e.g. "
                 "rotations off the pixel grid interpolate pixels), so the same input lands in "
                 "slightly different places.")
        if maps.tags.cross_section:
            text += (" For a cross-section such as orbit alignment a tiny median with a long tail also "
                     "means near-ties: a slightly moved code can pick another alignment and land far "
                     "away (compare the group-pooled or max-filtering maps, which have no such jumps).")
    if maps.latent_acted_check is not None:
        text += (f" For this presentation seed the re-presented codes were not encoded: they are the "
                 f"seed-0 codes acted on in latent space (the encoder is exactly equivariant; re-presented "
                 f"inputs encoded for real on a sample differ from them by at most "
                 f"{maps.latent_acted_check:.1g} of the largest code entry), so this measures the "
                 f"projection alone. Seed 0 measures the encoder too.")
    if maps.measured_invariant and maps.invariance_rel_max > 0.5:
        text += (" Some inputs move far nonetheless (see the max): near a tie of the projection (e.g. two "
                 "equally good alignments), so check single inputs on the Orbits page.")
    return text


def load_failure_message(entry, exc: BaseException) -> str:
    """What a page says when the codes cannot be loaded: the error, the file or input it
    concerns, and what to do (no traceback; the server log gets one line)."""
    from backend.data.qm9 import cache_dir

    logging.getLogger(__name__).error("loading the codes of %s failed: %s: %s", entry.id,
                                      type(exc).__name__, exc)
    if isinstance(exc, registry.WeightsNotFoundError):
        return f"{entry.label} cannot be loaded: {exc}"
    named = getattr(exc, "filename", None)
    where = (f"the file {named}" if named else
             f"the weights {entry.weights_path} or the cache folder {cache_dir()}")
    return (f"Could not load the codes of {entry.label} ({type(exc).__name__}: {exc}). It concerns "
            f"{where}. What to do: reload the page (a corrupt cache file is moved aside and rebuilt "
            "automatically); if the error stays, check that the cache folder is writable and has free "
            "space, delete the file named here, or run `python -m backend check`.")


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
        failure = exc
    else:
        failure = None
    from backend.cache import take_notices

    for notice in take_notices():  # corrupt cache files moved aside and rebuilt
        st.warning(notice.message())
    if failure is not None:
        st.error(load_failure_message(entry, failure))
        st.stop()
    spec = next(s for s in entry.projections() if s.key == sel.projection)
    return sel, entry, encoded, maps, spec
