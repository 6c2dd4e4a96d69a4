"""Models added from outside the project: the ``latent_explorer.models`` entry points and ``register``.

The example package ``examples/c4_rotmnist`` (a C_4 group CNN on rotated MNIST, with its own
weights) is built and installed by pip into a temporary folder (``--target``, no index, no
build isolation: offline) and that folder is put on ``sys.path``, which is what an installed
package amounts to for ``importlib.metadata``. With no edit to the project it must then appear in
the registry, on the command line, in ``evaluate``, and on every page.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT

PLUGIN_ID = "rot_mnist_c4_example"
PAGES = ["app_pages/home.py", "app_pages/latent_maps.py", "app_pages/interpolation.py",
         "app_pages/orbits.py", "app_pages/downstream.py"]


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory):
    """A folder holding the example package as pip installs it (package + ``.dist-info``)."""
    src = tmp_path_factory.mktemp("plugin_src") / "c4_rotmnist"
    shutil.copytree(ROOT / "examples" / "c4_rotmnist", src,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    site = tmp_path_factory.mktemp("plugin_site")
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                           "--no-build-isolation", "--target", str(site), str(src)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (next(site.glob("elx_c4_example-*.dist-info")) / "entry_points.txt").read_text().count(PLUGIN_ID)
    return site


@pytest.fixture()
def plugin(plugin_site, monkeypatch):
    """The example plugin discovered through its entry point (and removed again afterwards)."""
    from backend import registry

    monkeypatch.syspath_prepend(str(plugin_site))
    monkeypatch.setenv("ELX_MNIST_LIMIT", "300")
    importlib.invalidate_caches()
    assert PLUGIN_ID not in registry.MODELS  # not visible before the package is installed
    added = registry.discover()
    try:
        assert added == [PLUGIN_ID]
        entry = registry.get(PLUGIN_ID)
        entry.reset()
        yield entry
    finally:
        registry.unregister(PLUGIN_ID)
        for name in [m for m in sys.modules if m.startswith("elx_c4_example")]:
            del sys.modules[name]


def test_the_plugin_is_found_through_its_entry_point_and_encodes(plugin):
    from backend import registry
    from backend.groups import CyclicShiftAction

    assert PLUGIN_ID in registry.available() and PLUGIN_ID not in registry.unavailable()
    assert plugin.family == "images" and plugin.weights_path.parent.name == "weights"
    assert isinstance(plugin.latent_action, CyclicShiftAction) and plugin.latent_action.code_shape == (12, 4)
    assert plugin.input_action.widget == "angle" and plugin.input_action.steps == 4
    enc = plugin.encode_dataset(0)
    assert enc.stored.values.shape == (300, 12, 4)
    # "rotated again" by multiples of 90 degrees: every code moves exactly along its C_4 orbit
    expect = np.stack([np.roll(z, k, axis=-1) for z, k in zip(enc.stored.values, enc.perms)])
    assert np.abs(enc.random.values - expect).max() < 1e-4 * np.abs(expect).max()
    decoded = plugin.decode(enc.stored[[0]])
    assert decoded[0].image.shape == (29, 29) and decoded[0].valid is None and "classifier" in decoded[0].caption


def test_the_plugin_is_on_the_command_line(plugin, plugin_site):
    from backend.__main__ import model_commands

    assert model_commands()["c4example"] == PLUGIN_ID
    assert "c4example" not in model_commands(report_only=True)  # `evaluate all` stays the shipped set
    env = {**os.environ, "ELX_PLUGINS": "1", "PYTHONPATH": os.pathsep.join([str(plugin_site), str(ROOT)])}
    out = subprocess.run([sys.executable, "-m", "backend", "encode", "--help"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "c4example" in out.stdout, out.stderr[-2000:]
    out = subprocess.run([sys.executable, "-m", "backend", "check", "--model", PLUGIN_ID], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.startswith(f"ok {PLUGIN_ID}"), out.stdout + out.stderr[-2000:]


def test_the_plugin_is_evaluated_by_its_plan(plugin, tmp_path):
    from backend.evaluate import EvalConfig, evaluate, evaluator

    assert evaluator(plugin).__name__ == "evaluate_rotmnist"
    cfg = EvalConfig(seeds=1, probes=("linear",), n_train=200, n_test=100, ks=(2,), n_pairs=50, n_queries=5,
                     pool=50, n_paths=2, steps=3, n_orbit=10, adv_codes=60, adv_neighbours=2, quick=True)
    tables = evaluate(plugin, cfg, tmp_path / PLUGIN_ID, command="test")
    assert {"probes", "k_sweep", "distortion", "interpolation", "invariance"} <= set(tables)
    assert (tmp_path / PLUGIN_ID / "settings.json").exists()
    inv = tables["invariance"].set_index("representation")["orbit_spread_ratio"]
    assert inv["group max pooling"] < inv["raw code"]


def test_every_page_runs_with_the_plugin(plugin):
    from tests.app.apptest import run_app

    at = run_app(query={"model": PLUGIN_ID, "projection": "orbit_alignment", "color": "label"}, timeout=600)
    assert at.radio(key="model").value == PLUGIN_ID  # listed in the sidebar and selected by the link
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])
        assert not at.error, (page, [e.value for e in at.error])
        if page.endswith("orbits.py"):
            assert any("Invariance error" in m.label for m in at.metric)
            assert any("rotate" in c.value for c in at.caption)


# ---------------------------------------------------------------------------- in-process register()
def test_register_refuses_duplicates_and_non_specs():
    from backend import registry
    from backend.families import images

    assert registry.register(images.ROT_MNIST_C8) is registry.get("rot_mnist_c8")  # same spec: a no-op
    with pytest.raises(ValueError, match="already registered"):
        registry.register(dataclasses.replace(images.ROT_MNIST_C8, label="another"))
    with pytest.raises(TypeError, match="ModelSpec"):
        registry.register("rot_mnist_c8")
    spec = dataclasses.replace(images.ROT_MNIST_C8, id="rot_mnist_c8_copy", label="a copy", evaluation=None)
    try:
        entry = registry.register(spec)
        assert entry.spec is spec and registry.get("rot_mnist_c8_copy") is entry
        assert entry.weights_path.name == "rot_mnist_c8_copy.pt" and "rot_mnist_c8_copy" in registry.unavailable()
    finally:
        registry.unregister("rot_mnist_c8_copy")
    assert "rot_mnist_c8_copy" not in registry.MODELS


def test_a_broken_plugin_is_reported_not_fatal(tmp_path, monkeypatch):
    """A distribution whose entry point does not import: recorded, logged, and `check` fails on it."""
    from backend import registry
    from backend.__main__ import check_models

    dist = tmp_path / "broken_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[{registry.ENTRY_POINT_GROUP}]\nbroken = no_such_module:SPEC\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    before = list(registry.MODELS)
    try:
        assert registry.discover() == []
        assert "no_such_module" in registry.PLUGIN_ERRORS["broken"]
        assert list(registry.MODELS) == before
        lines = []
        assert check_models(out=type("Out", (), {"write": lambda self, s: lines.append(s)})()) == 1
        assert any("FAIL plugin broken" in line for line in lines)
    finally:
        registry.PLUGIN_ERRORS.pop("broken", None)
