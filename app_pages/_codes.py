"""Codes-only mode on the page side: the sidebar's "Your own codes", and the Downstream view of them.

Not a page. The checks, the registry entry and the measurements live in
:mod:`backend.codes_upload`; this file reads widgets and draws. An uploaded set is
registered for the whole server process (by the SHA-256 of its files) but listed only
in the session that uploaded it (:func:`visible`); sets named on the command line
(``--codes`` / ``$ELX_CODES``) are listed in every session.
"""

from __future__ import annotations

import math

import streamlit as st

from backend import codes_analysis, codes_upload, plots, registry

_ACTIONS = {"from the file": None, "S_n": "S", "C_N": "C", "none": "none"}
_ACTION_HELP = ("**S_n**: permutes the n rows of codes (M, n, d) (e.g. per-node codes of a graph network). "
                "**C_N**: shifts the fibre of codes (M, c, N) cyclically (c regular fields of a C_N-equivariant "
                "CNN). **none**: codes (M, D) without a latent action. *from the file*: the npz's `action` "
                "entry, e.g. `np.savez(path, codes=z, action='C_8')`.")


def prepare(url_names_model: bool) -> None:
    """At the start of the sidebar: register the command-line codes (once per file version), show
    their errors, and select the first of them in a new session whose link names no model."""
    ss = st.session_state
    results = codes_upload.register_startup()
    for _, error in results:
        if error:
            st.sidebar.error(f"Codes from the command line could not be loaded: {error}")
    ids = [model_id for model_id, _ in results if model_id]
    if ids and not url_names_model and not ss.get("_codes_default_done"):
        ss["model"] = ids[0]
    ss["_codes_default_done"] = True


def visible(models: list[str]) -> list[str]:
    """``models`` without the codes other sessions uploaded."""
    mine = set(st.session_state.get("_my_codes", ()))
    return [m for m in models
            if not getattr(registry.MODELS.get(m), "uploaded", False) or m in mine]


def _declared_action() -> str | None:
    kind = _ACTIONS[st.session_state.get("codes_action", "from the file")]
    size = int(st.session_state.get("codes_size") or 0)
    if kind is None or kind == "none":
        return kind
    return f"{kind}_{size}" if size else f"{kind}_n"


def _load_upload() -> None:
    """Button callback (runs before the rerun, so the sidebar lists the new entry at once)."""
    ss = st.session_state
    upload, labels = ss.get("codes_file"), ss.get("codes_labels")
    if upload is None:
        ss["_codes_msg"] = ("error", "Choose a .npz or .npy file of codes first.")
        return
    try:
        data = codes_upload.parse_codes(upload.getvalue(), upload.name, _declared_action(),
                                        labels.getvalue() if labels is not None else None,
                                        labels.name if labels is not None else "labels.csv")
    except codes_upload.CodesFileError as exc:
        ss["_codes_msg"] = ("error", f"{upload.name if labels is None else upload.name + ' / ' + labels.name}: "
                                     f"{exc}")
        return
    entry = codes_upload.register(data, uploaded=True)
    mine = ss.setdefault("_my_codes", [])
    if entry.id not in mine:
        mine.append(entry.id)
    ss["model"] = entry.id
    notes = "".join(f"\n* {n}" for n in data.notes)
    ss["_codes_msg"] = ("success", f"Loaded {len(data):,} codes ({data.action}); selected as model "
                                   f"*{entry.label}*. Open **Latent maps** or **Downstream**.{notes}")


def sidebar_section() -> None:
    """The "Your own codes" expander (call inside ``with st.sidebar``)."""
    try:
        limit = codes_upload.max_bytes()
    except codes_upload.CodesFileError as exc:
        st.error(str(exc))
        return
    msg = st.session_state.get("_codes_msg")
    # a constant ``expanded``: a changing one makes a new expander, which would close after a load
    with st.expander("Your own codes", icon=":material/upload_file:"):
        st.caption("Latent codes from your own model, no model code needed: a `.npz` (array `codes`, optional "
                   "`mask`, `action`, and 1-D label arrays) or a `.npy`. Both maps, every invariant projection of "
                   f"the action, distortion and probes. At most {limit / 1e6:.0f} MB (`ELX_CODES_MAX_MB`).")
        st.selectbox("Declared action", list(_ACTIONS), key="codes_action", help=_ACTION_HELP)
        if _ACTIONS[st.session_state["codes_action"]] in ("S", "C"):
            st.number_input("n or N (0: from the codes' shape)", min_value=0, max_value=100_000, step=1,
                            key="codes_size", help="If set, the codes' n (S_n) or N (C_N) must equal it.")
        mb = max(1, math.ceil(limit / 1e6))
        st.file_uploader("Codes (.npz / .npy)", type=["npz", "npy"], key="codes_file", max_upload_size=mb)
        st.file_uploader("Labels (.csv, optional: header + one row per code)", type=["csv"], key="codes_labels",
                         max_upload_size=mb)
        st.button("Show these codes", key="codes_load", on_click=_load_upload, type="primary")
        if msg:
            (st.error if msg[0] == "error" else st.success)(msg[1])


@st.cache_data(show_spinner="Measuring the distortion of every projection...", max_entries=8)
def _distortion(model_id: str, seed: int, order: str, proj_seed: int, proj_k: int):
    from app_pages import _common

    return codes_analysis.distortion_table(_common._encoded(model_id, seed).codes(order), seed=proj_seed, k=proj_k)


@st.cache_data(show_spinner="Fitting the probes (linear and k-NN) on every representation...", max_entries=8)
def _probes(model_id: str, seed: int, order: str, proj_seed: int, proj_k: int):
    from app_pages import _common

    enc = _common._encoded(model_id, seed)
    return codes_analysis.probe_table(enc.codes(order), enc.table, seed=proj_seed, k=proj_k)


def downstream_page() -> None:
    """The Downstream page for your own codes: distortion per projection and probes, measured live."""
    from app_pages import _common

    sel, entry, encoded, maps, spec = _common.page_data("Downstream: your codes, measured")
    st.markdown(f"Measured now on **{entry.label}** ({entry.order_labels.get(sel.order, sel.order)}); "
                "no results files are involved. The shipped models' claims are on this page when one of them "
                "is selected.")
    st.subheader("How much each projection keeps")
    try:
        dist = _distortion(sel.model, sel.order_seed, sel.order, sel.proj_seed, sel.proj_k)
    except Exception as exc:  # shown at the page edge
        st.error(f"The distortion could not be measured ({type(exc).__name__}: {exc}).")
        st.stop()
    st.plotly_chart(plots.distortion_plot(dist), width="stretch", key="codes_distortion_plot")
    st.caption("On random pairs of your codes (at most 3,000 codes, 1,000 pairs): ‖s(z1) − s(z2)‖ / d([z1], [z2]) "
               "against the exact quotient distance of the declared action. An isometry is one point at 1, a "
               "bi-Lipschitz map a bounded bar, a lossy map a bar reaching toward 0. The tags are declared for "
               "the action; nn_spearman_mean / nn_knn_overlap: how well distances after projection rank 500 "
               "neighbours of 50 queries like the quotient distance does.")
    st.dataframe(dist, hide_index=True, key="codes_distortion_table")
    st.subheader("Probes for your labels")
    tasks = codes_analysis.label_tasks(encoded.table)
    if not tasks:
        st.info("No label to probe: add 1-D arrays with one value per code to the npz (e.g. "
                "`np.savez(path, codes=z, digit=y)`), or upload a CSV with a header and one row per code.")
        return
    probes = _probes(sel.model, sel.order_seed, sel.order, sel.proj_seed, sel.proj_k)
    if probes.empty:
        st.info("Too few labelled codes to fit a probe (a probe needs training and test rows with at least "
                "two classes).")
        return
    st.caption("Ridge (numbers: R² on held-out codes) and logistic regression (categories: accuracy), and k-NN "
               "(k = 10), on standardized features; a seeded 80/20 split (or your `split` column with "
               "train / test). One column per representation: the raw codes and each invariant projection.")
    st.dataframe(codes_analysis.wide_probe_table(probes), hide_index=True, key="codes_probe_table")
