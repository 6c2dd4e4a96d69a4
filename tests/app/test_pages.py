"""Streamlit AppTest: every page runs on a 600-molecule subset with a tiny trained model."""

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT

APP = str(ROOT / "app.py")
PAGES = ["app_pages/home.py", "app_pages/latent_maps.py", "app_pages/interpolation.py",
         "app_pages/orbits.py", "app_pages/downstream.py"]


@pytest.fixture()
def app(tiny_registry):
    at = AppTest.from_file(APP, default_timeout=240)
    return at


@pytest.mark.parametrize("page", PAGES)
def test_page_runs_without_exception(app, page):
    app.run()
    assert not app.exception, app.exception
    app.switch_page(page).run()
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, [e.value for e in app.error]
    assert app.title[0].value


def _qp(app, key):
    value = app.query_params[key]
    return value[0] if isinstance(value, list) else value


def test_sidebar_is_mirrored_to_query_params(app):
    app.run()
    # every sidebar setting is written to the URL
    for key, value in {"model": "graph_vae_qm9", "projection": "sort", "order": "random",
                       "order_seed": "0", "proj_seed": "0", "color": "gap"}.items():
        assert _qp(app, key) == value


def test_query_params_restore_a_shared_view(tiny_registry):
    at = AppTest.from_file(APP, default_timeout=240)
    at.query_params["projection"] = "mean_pool"
    at.query_params["color"] = "mu"
    at.run()
    at.switch_page("app_pages/latent_maps.py").run()
    assert not at.exception
    assert any("Mean pooling" in m.value for m in at.markdown)
    assert _qp(at, "projection") == "mean_pool" and _qp(at, "order") == "random"


@pytest.mark.parametrize("text, message", [
    ("C1CC", "InvalidSmilesError"), ("CCCl", "UnsupportedElementError"),
    ("CCCCCCCCCC", "TooManyAtomsError")])
def test_bad_smiles_in_interpolation_gives_message(app, text, message):
    app.run()
    app.switch_page("app_pages/interpolation.py").run()
    app.radio(key="src_A").set_value("SMILES").run()
    app.text_input(key="text_A").set_value(text).run()
    assert not app.exception, [e.value for e in app.exception]
    assert any(message in e.value for e in app.error), [e.value for e in app.error]
    # the app keeps running: fix the input and the page works again
    app.text_input(key="text_A").set_value("CCO").run()
    assert not app.exception and not app.error


def test_interpolation_with_molecule_outside_qm9(app):
    app.run()
    app.switch_page("app_pages/interpolation.py").run()
    app.radio(key="src_B").set_value("SMILES").run()
    app.text_input(key="text_B").set_value("OCC(O)CO").run()
    assert not app.exception
    assert any("encoded now" in c.value or "#" in c.value for c in app.caption)


MNIST_CASES = ([(page, "orbit_alignment") for page in PAGES]
               + [(page, "max_filtering") for page in ("app_pages/latent_maps.py", "app_pages/interpolation.py",
                                                        "app_pages/orbits.py")])


@pytest.mark.parametrize("page, projection", MNIST_CASES)
def test_pages_run_with_rotated_mnist(tiny_rot_registry, page, projection):
    at = AppTest.from_file(APP, default_timeout=300)
    at.query_params["model"] = "rot_mnist_c8"
    at.query_params["projection"] = projection
    at.query_params["color"] = "label"
    at.run()
    assert not at.exception, at.exception
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert _qp(at, "model") == "rot_mnist_c8" and _qp(at, "projection") == projection
    if page.endswith("interpolation.py") and projection == "max_filtering":
        # not a cross-section: the page says it shows nearest real images instead
        assert any("nearest real image" in w.value for w in at.warning)
    if page.endswith("orbits.py"):
        assert any("Invariance error" in m.label for m in at.metric)


def test_bad_image_index_gives_message(tiny_rot_registry):
    at = AppTest.from_file(APP, default_timeout=300)
    at.query_params["model"] = "rot_mnist_c8"
    at.run()
    at.switch_page("app_pages/interpolation.py").run()
    at.radio(key="src_A").set_value("Image index").run()
    at.text_input(key="text_A").set_value("seven").run()
    assert not at.exception
    assert any("whole number" in e.value for e in at.error), [e.value for e in at.error]
    at.text_input(key="text_A").set_value("7").run()
    assert not at.exception and not at.error


def test_hand_edited_query_params_fall_back_to_valid_values(tiny_registry):
    at = AppTest.from_file(APP, default_timeout=240)
    for key, value in {"model": "nope", "order_seed": "-5", "proj_seed": "99999999", "proj_k": "abc",
                       "projection": "max_filtering", "order": "sideways"}.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert _qp(at, "model") == "graph_vae_qm9" and _qp(at, "projection") == "sort"
    assert _qp(at, "order_seed") == "0" and _qp(at, "proj_seed") == "10000" and _qp(at, "proj_k") == "0"
    assert _qp(at, "order") == "random"


@pytest.mark.parametrize("page", PAGES)
def test_pages_run_with_the_augmentation_cnn(tiny_aug_registry, page):
    at = AppTest.from_file(APP, default_timeout=300)
    at.query_params["model"] = "rot_mnist_cnn_aug"
    at.query_params["color"] = "label"
    at.run()
    assert not at.exception, at.exception
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert _qp(at, "projection") == "identity"
    if page.endswith("orbits.py"):
        assert any("Invariance error" in m.label for m in at.metric)


def test_downstream_quick_rerun_button(tiny_rot_registry):
    at = AppTest.from_file(APP, default_timeout=600)
    at.query_params["model"] = "rot_mnist_c8"
    at.run()
    at.switch_page("app_pages/downstream.py").run()
    assert not at.exception
    assert len(at.dataframe) >= 1  # the claims table from the shipped results
    next(b for b in at.button if b.label == "Rerun quick evaluation").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert any("quick live rerun" in w.value for w in at.warning)
