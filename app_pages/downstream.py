"""Downstream: the paper's claims as measured numbers (probes, distortion, paths, invariance)."""

import tempfile
from pathlib import Path

import streamlit as st

from app_pages import _codes, _common
from backend import plots
from backend.evaluate import EvalConfig, evaluate, evaluator, load_results
from backend.report import claims, implementation_checks, markdown_table, results_signature, short_commit

sel = _common.current()
entry = _common.get_entry(sel.model)
if getattr(entry, "codes_only", False):  # your own codes: no results files, measured live
    _codes.downstream_page()
    st.stop()
st.title("Downstream: the paper's claims, measured")
st.markdown(
    "Each claim of Hansen, Calissano & Feragen (ICML 2024) as a number. The tables come from the "
    "results files shipped with the weights (`models/results/`, written by "
    "`python -m backend evaluate all`); nothing here is typed by hand.")


@st.cache_data(show_spinner="Computing intervals and tests for the claims ...")
def _claims_tables(signature: tuple):
    """Claims and implementation checks of the shipped results (recomputed when a results file changes)."""
    return claims(), implementation_checks()


table, checks = _claims_tables(results_signature())
if len(table):
    st.caption("A claim *held* only when its 95 % interval excludes no effect on the claimed side (or the stated "
               "test gives p < 0.05); *not significant* otherwise; *did not hold* when the effect is significant "
               "the other way; *needs rerun* where the results files lack the per-item data a paired test needs.")
    # a Markdown table: its long cells wrap, so the verdict column stays on screen
    st.markdown(markdown_table(table))
    if len(checks):
        st.subheader("Implementation checks")
        st.caption("Identities that hold by construction, for any weights (run also on random codes): they "
                   "test the code, not the paper's claims, and are not counted as results. Identical maps "
                   "are shown once.")
        st.markdown(markdown_table(checks))
else:
    st.info("No results files yet: run `python -m backend evaluate all`.")

results = load_results(sel.model)
if "quick" in st.session_state and st.session_state["quick"][0] == sel.model:
    results = st.session_state["quick"][1]
    st.warning("Showing the **quick live rerun** below (small subsamples, 2 seeds), not the shipped results.")

st.header(f"Details: {entry.label}")
settings = results.get("settings")
if settings:
    cfg = settings.get("config", {})
    st.caption(f"Command `{settings.get('command')}` · {cfg.get('seeds')} seeds · "
               f"{settings.get('wall_time_s', 0) / 60:.1f} min · commit `{short_commit(settings.get('git_commit'))}` · "
               f"weights `{str(settings.get('weights_sha256'))[:12]}`")
if not results:
    st.info(f"No results files for {entry.id}.")

summary = results.get("probes_summary")
if summary is not None and "r2_mean" in summary:
    st.subheader("Probes: R² per property")
    probe = st.radio("Probe", list(summary["probe"].unique()), horizontal=True)
    st.plotly_chart(plots.r2_bars(summary, probe), width="stretch")
    st.caption("Mean ± std over seeds; each seed draws its own training and test molecules. MAE is in "
               "the property's unit (energies in eV, converted from the stored Hartree).")
    st.dataframe(summary, hide_index=True)
elif summary is not None:
    st.subheader("Probes: digit accuracy")
    st.plotly_chart(plots.accuracy_bars(summary), width="stretch")
    st.dataframe(summary, hide_index=True)

k_sweep = results.get("k_sweep_summary")
if k_sweep is not None and summary is not None:
    st.subheader("Random invariant projections: accuracy against the number of templates k")
    lin = summary[summary["probe"] == "linear"].set_index("representation")["accuracy_mean"]
    base = {name: float(lin[name]) for name in ("orbit_alignment", "raw codes") if name in lin}
    st.plotly_chart(plots.accuracy_vs_k(k_sweep, base), width="stretch")
    st.caption("Linear probe (logistic regression); max filtering gives k features, sorted coorbits "
               "k·N. Dotted lines: the same probe on orbit-aligned (lossless) and raw codes.")

dist = results.get("distortion")
if dist is not None:
    st.subheader("How much each projection keeps")
    st.plotly_chart(plots.distortion_plot(dist), width="stretch")
    st.caption("On random pairs: ‖s(z1) − s(z2)‖ / d([z1], [z2]) against the exact quotient distance. "
               "An isometry is one point at 1; a bi-Lipschitz map a bounded bar; a lossy map a bar "
               "reaching toward 0. Confusion: distinct orbits sent closer than 1e-3 of the median "
               "distance. nn_spearman: rank correlation of each query's distances with the quotient ones; "
               "nn_knn_overlap: shared 10 nearest neighbours.")
    st.dataframe(dist, hide_index=True)
adv = results.get("adversarial")
if adv is not None:
    st.caption("Searched pairs (`adversarial.csv`, from the cached codes of the same weights): each code's "
               "nearest neighbours in projected and in raw space, where a lossy map's collisions would be. "
               "adv_distortion: largest / smallest ratio found; rand_distortion: the same on random pairs.")
    st.dataframe(adv, hide_index=True)

interp = results.get("interpolation_summary")
if interp is not None:
    st.subheader("Interpolation paths: raw straight line vs invariant (quotient geodesic)")
    st.dataframe(interp, hide_index=True)
    if entry.validity_note:
        st.caption(f"Validity: {entry.validity_note}.")

inv = results.get("invariance")
if inv is not None:
    st.subheader("Invariance to input rotations")
    st.dataframe(inv, hide_index=True)
    st.caption("Median over test images of the mean ‖f(rot x) − f(x)‖ over rotations by 2πk/8, "
               "divided by the median distance between codes of two different digits (0 = invariant). "
               "The orbit average is measured under a rotation by half a step (π/8), off its sampled angles.")

st.divider()
if evaluator(entry) is not None and _common.read_only():
    st.caption("The live rerun of the quick evaluation is off in this read-only deployment "
               "(`ELX_READ_ONLY=1`); the tables above are the shipped results.")
elif evaluator(entry) is not None:
    st.markdown("**Rerun a quick version live** (2 seeds, small subsamples; takes one to a few minutes). "
                "It checks that the pipeline runs on this machine; its numbers are noisier than the shipped ones.")
    if st.button("Rerun quick evaluation"):
        try:
            _common.load_encoded(sel.model, 0)
            bar = st.progress(0.0, text="starting")
            with tempfile.TemporaryDirectory(prefix="elx_quick_") as tmp:  # removed after reading
                out = Path(tmp)
                evaluate(entry, EvalConfig.quick_config(), out / entry.id, command="dashboard quick rerun",
                         progress=lambda f, m: bar.progress(min(max(f, 0.0), 1.0), text=m))
                st.session_state["quick"] = (sel.model, load_results(entry.id, out))
            st.rerun()
        except Exception as exc:  # shown at the page edge; the app keeps running
            st.error(f"The quick evaluation failed: {exc}")
    if "quick" in st.session_state and st.button("Show the shipped results again"):
        del st.session_state["quick"]
        st.rerun()
