"""Group elements typed on the Orbits page: relabellings (S_n) and rotation angles (C_N).

They are parsed by the models' input actions (:mod:`backend.families`), which need no weights.
Every bad text raises ValueError with a readable message (the page shows it with
``st.error``); nothing else, such as OverflowError, escapes.
"""

import ast
from pathlib import Path

import numpy as np
import pytest

from backend.families.images import ImageRotation
from backend.families.molecules import NodeRelabelling

N = 9
ROOT = Path(__file__).resolve().parents[1]


class _Parser:
    """``parse_element`` as the pages' older callers saw it: the typed element, unwrapped."""

    def __init__(self, action):
        self.action = action

    def parse_element(self, text):
        return self.action.parse(text).values[0]


@pytest.fixture()
def qm9_entry():
    return _Parser(NodeRelabelling(N))


@pytest.fixture()
def mnist_entry():
    return _Parser(ImageRotation(8))


@pytest.mark.parametrize("text", ["1 0 2 3 4 5 6 7 8", "1,0,2,3,4,5,6,7,8", "[1, 0, 2, 3, 4, 5, 6, 7, 8]",
                                  " (1 0 2 3 4 5 6 7 8) ", "+1 0 2 3 4 5 6 7 8"])
def test_relabelling_parses(qm9_entry, text):
    perm = qm9_entry.parse_element(text)
    assert perm.dtype == np.int64 and perm.tolist() == [1, 0, 2, 3, 4, 5, 6, 7, 8]


@pytest.mark.parametrize("text, says", [
    ("9223372036854775808", "got 1 number(s)"),                      # was OverflowError
    ("0 1 2 3 4 5 6 7 9223372036854775808", "out of range"),         # was OverflowError
    ("0 1 2 3 4 5 6 7 -9223372036854775809", "out of range"),        # was OverflowError
    ("0 1 2 3 4 5 6 7 " + "9" * 30, "out of range"),
    ("0 1 2 3 4 5 6 7 " + "9" * 5000, "not a whole number"),         # beyond int()'s digit limit
    ("0 1 2 3 4 5 6 7 9", "slot 9 is out of range"),
    ("0 1 2 3 4 5 6 7 -1", "slot -1 is out of range"),
    ("0 0 2 3 4 5 6 7 8", "slot 0 appears more than once and slot 1 is missing"),
    ("1 0 2", "got 3 number(s)"),
    ("0 1 2 3 4 5 6 7 8 9", "got 10 number(s)"),
    ("", "no relabelling typed"),
    ("   ", "no relabelling typed"),
    ("[]", "no relabelling typed"),
    ("a b c", "'a' is not a whole number"),
    ("1.0 0 2 3 4 5 6 7 8", "'1.0' is not a whole number"),
    ("nan 0 2 3 4 5 6 7 8", "'nan' is not a whole number"),
    ("1e3 0 2 3 4 5 6 7 8", "'1e3' is not a whole number"),
])
def test_bad_relabelling_raises_value_error_with_message(qm9_entry, text, says):
    with pytest.raises(ValueError) as info:
        qm9_entry.parse_element(text)
    assert type(info.value) is ValueError
    msg = str(info.value)
    assert says in msg and "0..8" in msg and len(msg) < 200


@pytest.mark.parametrize("text, degrees", [("45", 45.0), ("45°", 45.0), (" -90 ", -90.0), ("1e3", 1000.0),
                                           ("12.5 °", 12.5), ("0", 0.0)])
def test_angle_parses_degrees_to_radians(mnist_entry, text, degrees):
    assert mnist_entry.parse_element(text) == pytest.approx(np.radians(degrees))


@pytest.mark.parametrize("text, says", [("nan", "finite"), ("inf", "finite"), ("-inf", "finite"),
                                        ("1e400", "finite"), ("abc", "number of degrees"),
                                        ("", "number of degrees"), ("45 deg", "number of degrees"),
                                        ("1,5", "number of degrees")])
def test_bad_angle_raises_value_error_with_message(mnist_entry, text, says):
    with pytest.raises(ValueError) as info:
        mnist_entry.parse_element(text)
    assert says in str(info.value)


def test_orbits_page_shows_parse_errors_with_st_error():
    """The page wraps the input action's ``parse`` in ``except ValueError`` and calls ``st.error``."""
    tree = ast.parse((ROOT / "app_pages" / "orbits.py").read_text())
    guarded = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Try):
            continue
        calls = {n.func.attr for n in ast.walk(ast.Module(node.body, [])) if isinstance(n, ast.Call)
                 and isinstance(n.func, ast.Attribute)}
        if "parse" not in calls and "parse_element" not in calls:
            continue
        for handler in node.handlers:
            caught = ast.unparse(handler.type) if handler.type is not None else "BaseException"
            shown = any(isinstance(n, ast.Call) and ast.unparse(n.func) == "st.error"
                        for n in ast.walk(ast.Module(handler.body, [])))
            guarded.append(("ValueError" in caught or "Exception" in caught) and shown)
    assert guarded and all(guarded)
