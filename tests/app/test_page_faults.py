"""AppTest checks of page-level faults a user reported (each failed before its fix); the
interactions a browser sends are tested in ``tests/e2e``."""

from tests.app.apptest import run_app as _run


def test_model_names_are_shown_whole_and_the_overview_counts_every_model(tiny_registry):
    from backend import registry

    at = _run("app_pages/home.py")
    # a radio wraps long names; a select box cut them off
    radio = next(r for r in at.sidebar.radio if r.key == "model")
    assert len(radio.options) == len(registry.available())
    text = " ".join(m.value for m in at.markdown)
    n = len(registry.available())
    assert f"**{n} model{'s' if n != 1 else ''}**" in text
    assert "Two models" not in text


def test_qm9_orbit_caption_speaks_of_relabelling_not_rotation(tiny_registry):
    at = _run("app_pages/orbits.py")
    captions = " ".join(c.value for c in at.caption)
    assert "rotation" not in captions.lower() and "Relabelling" in captions
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Invariance error of the projection"].endswith("%")


def test_latent_maps_titles_and_badges_are_honest_for_the_augmentation_cnn(tiny_aug_registry):
    at = _run("app_pages/latent_maps.py", {"model": "rot_mnist_cnn_aug"})
    text = " ".join(m.value for m in at.markdown)
    assert "Invariant view" not in text
    assert "No latent group action" in text and "typical distance" in text


def test_k_is_capped_in_the_sidebar(tiny_rot_registry):
    at = _run("app_pages/latent_maps.py", {"model": "rot_mnist_c8", "projection": "sorted_coorbits",
                                           "proj_k": "4096"})
    box = next(n for n in at.sidebar.number_input if n.key == "proj_k")
    assert box.max == 1024 and box.value <= 1024
    assert any("Expected fit time" in c.value for c in list(at.sidebar.caption) + list(at.sidebar.warning))


def test_bad_numbers_in_a_shared_link_are_reported_not_silently_replaced(tiny_registry):
    at = _run(None, {"order_seed": "1e12"})
    assert any("order_seed" in w.value for w in at.main.warning)
    box = next(n for n in at.sidebar.number_input if n.key == "order_seed")
    assert box.value == 0
