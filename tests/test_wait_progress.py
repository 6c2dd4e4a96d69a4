"""Visitors who wait for someone else's first-start encode are told so (issue 14).

Before: the page passed no ``on_wait`` to ``encode_dataset``, so a second visitor on an empty
cache saw a progress bar stuck at 0 % while the first one encoded. Now ``encode_dataset(...,
on_wait=...)`` hands the lock's message to the page, which shows :func:`waiting_label` in its
progress bar (the browser check is ``tests/e2e/test_load_faults.py``, marked slow).
"""

from __future__ import annotations

import threading
import time

import pytest



@pytest.fixture()
def slow_rot_entry(tiny_rot_registry, tmp_path, monkeypatch):
    """The tiny rotated-MNIST entry on an empty cache folder, its encode slowed down (by 1 s,
    wherever the registry computes it: the cache's ``compute`` is wrapped) so that a second
    caller arrives while the first one encodes; ``started`` is set when the encode begins."""
    from backend import cache

    monkeypatch.setenv("ELX_CACHE_DIR", str(tmp_path))
    entry = tiny_rot_registry
    started = threading.Event()
    real = cache.load_or_compute_npz

    def slowed(path, names, compute, *args, **kwargs):
        def slow_compute():
            started.set()
            time.sleep(1.0)
            return compute()
        return real(path, names, slow_compute, *args, **kwargs)

    monkeypatch.setattr(cache, "load_or_compute_npz", slowed)
    return entry, started


def test_the_second_visitor_is_told_that_another_is_encoding_and_does_not_encode(slow_rot_entry):
    entry, started = slow_rot_entry
    first_progress, second_progress, first_wait, second_wait, errors = [], [], [], [], []

    def visit(progress, waits):
        try:
            entry.encode_dataset(0, progress=lambda f, m: progress.append(f), on_wait=waits.append)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    first = threading.Thread(target=visit, args=(first_progress, first_wait))
    first.start()
    assert started.wait(60)
    second = threading.Thread(target=visit, args=(second_progress, second_wait))
    second.start()
    first.join(120)
    second.join(120)
    assert not errors, errors
    assert first_wait == [] and first_progress and first_progress[-1] == 1.0
    assert len(second_wait) == 1, second_wait
    assert "another visitor" in second_wait[0] and entry.encoded_cache_path(0).name in second_wait[0]
    assert second_progress == []  # it waited and read the file, it did not encode


def test_the_page_label_for_a_waiting_visitor_says_so():
    from app_pages._common import waiting_label

    text = waiting_label("another visitor or process is computing latents_x.npz; waiting for it to finish")
    assert text.startswith("Another visitor is encoding this data set; waiting") and "latents_x.npz" in text


def test_load_encoded_passes_a_waiting_callback_that_updates_the_progress_bar(monkeypatch):
    """The page's call: ``on_wait`` reaches ``encode_dataset`` and writes the waiting label into
    the progress bar (Streamlit's elements replaced by recorders)."""
    from app_pages import _common

    calls, bars = [], []

    class Bar:
        def __init__(self):
            self.texts = []
            bars.append(self)

        def progress(self, value, text=None):
            self.texts.append((value, text))

    class Holder:
        def status(self, *a, **k):
            return self

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, **k):
            pass

        def empty(self):
            pass

    class Entry:
        id, item_noun = "fake", "thing"

        def encoded_cache_path(self, seed):
            from pathlib import Path

            return Path("/nonexistent/latents_fake.npz")

        def encode_dataset(self, seed, progress=None, on_wait=None):
            calls.append((progress, on_wait))
            on_wait("another visitor or process is computing latents_fake.npz; waiting for it to finish")

    monkeypatch.setattr(_common, "get_entry", lambda model_id: Entry())
    monkeypatch.setattr(_common, "_ensure_data", lambda entry: None)
    monkeypatch.setattr(_common, "_encoded", lambda model_id, seed: "codes")
    monkeypatch.setattr(_common.st, "empty", lambda: Holder())
    monkeypatch.setattr(_common.st, "progress", lambda value: Bar())
    assert _common.load_encoded("fake", 0) == "codes"
    assert len(calls) == 1 and callable(calls[0][1])
    assert bars and bars[0].texts[-1][0] == 0.0
    assert bars[0].texts[-1][1].startswith("Another visitor is encoding this data set")

