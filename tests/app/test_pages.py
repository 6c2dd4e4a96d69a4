"""Streamlit AppTest: every page runs with each tiny trained model (QM9 on a 600-molecule subset,
rotated MNIST on 300 images).

One AppTest per model walks all pages (and, for rotated MNIST, both projections), carrying
every check the separate per-page tests made; the interactions of one page (typed molecules,
a bad image index) and the start from a hand-made URL have tests of their own.
"""

from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT

APP = str(ROOT / "app.py")
PAGES = ["app_pages/home.py", "app_pages/latent_maps.py", "app_pages/interpolation.py",
         "app_pages/orbits.py", "app_pages/downstream.py"]


def _qp(app, key):
    value = app.query_params[key]
    return value[0] if isinstance(value, list) else value


def _assert_clean(at, where):
    assert not at.exception, (where, [e.value for e in at.exception])
    assert not at.error, (where, [e.value for e in at.error])


def _start(query_params=None, timeout=240):
    at = AppTest.from_file(APP, default_timeout=timeout)
    for key, value in (query_params or {}).items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_graph_vae_walks_every_page(tiny_registry):
    at = _start()
    # every sidebar setting is written to the URL
    for key, value in {"model": "graph_vae_qm9", "projection": "sort", "order": "random",
                       "order_seed": "0", "proj_seed": "0", "color": "gap"}.items():
        assert _qp(at, key) == value, key
    for page in PAGES:
        at.switch_page(page).run()
        _assert_clean(at, page)
        assert at.title[0].value, page


def test_query_params_restore_a_shared_view(tiny_registry):
    at = _start({"projection": "mean_pool", "color": "mu"})
    at.switch_page("app_pages/latent_maps.py").run()
    assert not at.exception
    assert any("Mean pooling" in m.value for m in at.markdown)
    assert _qp(at, "projection") == "mean_pool" and _qp(at, "order") == "random"


BAD_SMILES = [("C1CC", "InvalidSmilesError"), ("CCCl", "UnsupportedElementError"),
              ("CCCCCCCCCC", "TooManyAtomsError")]


def test_typed_molecules_in_interpolation(tiny_registry):
    at = _start()
    at.switch_page("app_pages/interpolation.py").run()
    # each bad SMILES gives its message, and the app keeps running: fixing the input works again
    at.radio(key="src_A__graph_vae_qm9").set_value("SMILES").run()
    for text, message in BAD_SMILES:
        at.text_input(key="text_A").set_value(text).run()
        assert not at.exception, (text, [e.value for e in at.exception])
        assert any(message in e.value for e in at.error), (text, [e.value for e in at.error])
        at.text_input(key="text_A").set_value("CCO").run()
        assert not at.exception and not at.error, text
    # a molecule outside QM9 is encoded on the fly
    at.radio(key="src_B__graph_vae_qm9").set_value("SMILES").run()
    at.text_input(key="text_B").set_value("OCC(O)CO").run()
    assert not at.exception
    assert any("encoded now" in c.value or "#" in c.value for c in at.caption)


def test_hand_edited_query_params_fall_back_to_valid_values(tiny_registry):
    at = _start({"model": "nope", "order_seed": "-5", "proj_seed": "99999999", "proj_k": "abc",
                 "projection": "max_filtering", "order": "sideways", "color": "nonsense"})
    assert _qp(at, "model") == "graph_vae_qm9" and _qp(at, "projection") == "sort"
    # out-of-range or unparsable numbers fall back to the default, and the page says so at its top
    assert _qp(at, "order_seed") == "0" and _qp(at, "proj_seed") == "0" and _qp(at, "proj_k") == "0"
    assert _qp(at, "order") == "random"
    assert _qp(at, "color") == "gap"  # the default colour, not the first in the list
    warned = " ".join(w.value for w in at.main.warning)
    assert "proj_seed" in warned and "order_seed" in warned and "proj_k" in warned
    assert "`model`" in warned and "`order`" in warned and "`projection`" in warned and "`color`" in warned
    assert not any("in the link" in w.value for w in at.sidebar.warning)


def test_a_bad_source_in_the_link_is_reported_not_silently_replaced(tiny_registry):
    at = _start({"src_A": "index", "src_B": "random", "orbit_src": "bogus", "orbit_how": "sideways"})
    at.switch_page("app_pages/interpolation.py").run()
    _assert_clean(at, "interpolation")
    warned = " ".join(w.value for w in at.main.warning)
    assert "`src_A` in the link: ignored 'index'" in warned and "'random'" in warned
    assert "src_B" not in warned  # a valid value: no note
    assert _qp(at, "src_A") == "random"
    at.switch_page("app_pages/orbits.py").run()
    _assert_clean(at, "orbits")
    warned = " ".join(w.value for w in at.main.warning)
    assert "`orbit_src` in the link: ignored 'bogus'" in warned
    # once drawn, the choice is the session's own: switching pages back says nothing more
    at.switch_page("app_pages/interpolation.py").run()
    assert not any("src_A" in w.value for w in at.main.warning)


def _rot_page_checks(at, page, projection):
    _assert_clean(at, (page, projection))
    assert _qp(at, "model") == "rot_mnist_c8" and _qp(at, "projection") == projection
    if page.endswith("interpolation.py") and projection == "max_filtering":
        # not a cross-section: the page says it shows nearest real images instead
        assert any("nearest real image" in w.value for w in at.warning)
    if page.endswith("orbits.py"):
        assert any("Invariance error" in m.label for m in at.metric)


def test_rotated_mnist_walks_every_page_and_projection(tiny_rot_registry):
    at = _start({"model": "rot_mnist_c8", "projection": "orbit_alignment", "color": "label"}, timeout=600)
    for page in PAGES:
        at.switch_page(page).run()
        _rot_page_checks(at, page, "orbit_alignment")
    # downstream: the claims table from the shipped results, then the quick live rerun
    assert len(at.dataframe) >= 1
    next(b for b in at.button if b.label == "Rerun quick evaluation").click().run()
    _assert_clean(at, "quick rerun")
    assert any("quick live rerun" in w.value for w in at.warning)
    # max filtering (not a cross-section), chosen in the sidebar
    at.selectbox(key="projection").set_value("max_filtering").run()
    for page in ("app_pages/latent_maps.py", "app_pages/interpolation.py", "app_pages/orbits.py"):
        at.switch_page(page).run()
        _rot_page_checks(at, page, "max_filtering")


def test_bad_image_index_gives_message(tiny_rot_registry):
    at = _start({"model": "rot_mnist_c8"}, timeout=300)
    at.switch_page("app_pages/interpolation.py").run()
    at.radio(key="src_A__rot_mnist_c8").set_value("Image index").run()
    at.text_input(key="text_A").set_value("seven").run()
    assert not at.exception
    assert any("whole number" in e.value for e in at.error), [e.value for e in at.error]
    at.text_input(key="text_A").set_value("99999").run()
    assert any("no image with index 99999" in e.value and "(indices 0–" in e.value for e in at.error), \
        [e.value for e in at.error]  # the message says which indices exist
    at.text_input(key="text_A").set_value("7").run()
    assert not at.exception and not at.error


def test_augmentation_cnn_walks_every_page(tiny_aug_registry):
    at = _start({"model": "rot_mnist_cnn_aug", "color": "label"}, timeout=300)
    for page in PAGES:
        at.switch_page(page).run()
        _assert_clean(at, page)
        assert _qp(at, "projection") == "identity"
        if page.endswith("orbits.py"):  # no projection to call invariant: the code's movement
            assert any("Movement of the code" in m.label for m in at.metric)
            assert not any("Invariance error" in m.label for m in at.metric)
        if page.endswith("interpolation.py"):  # one path: no "invariant path" for the identity
            assert not any("invariant path" in h.value for h in at.subheader)



def test_a_source_choice_survives_a_model_switch_where_the_new_model_offers_it(tiny_all_weights, monkeypatch):
    """Each model has its own source radio (a radio whose labels change under one key showed
    no option selected in the browser); the choice is kept under one name."""
    from backend import registry

    monkeypatch.setenv("ELX_WEIGHTS_DIR", str(tiny_all_weights))
    monkeypatch.setenv("ELX_QM9_SUBSET", "600")
    monkeypatch.setenv("ELX_MNIST_LIMIT", "300")
    for mid in registry.available():
        registry.get(mid).reset()
    at = _start(timeout=300)
    at.switch_page("app_pages/interpolation.py").run()
    at.radio(key="src_A__graph_vae_qm9").set_value("SMILES").run()
    assert _qp(at, "src_A") == "SMILES"
    at.radio(key="model").set_value("rot_mnist_c8").run()
    radio = at.radio(key="src_A__rot_mnist_c8")  # not offered here: the default, shown selected
    assert radio.value == "random" and radio.index == 0 and _qp(at, "src_A") == "random"
    at.radio(key="src_A__rot_mnist_c8").set_value("Image index").run()
    at.radio(key="model").set_value("graph_vae_qm9").run()
    assert at.radio(key="src_A__graph_vae_qm9").value == "random" and not at.exception
