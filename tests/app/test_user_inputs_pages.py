"""AppTest: typed SMILES in the sidebar's "Your own molecules" give a per-row results table, a
highlighted trace on both maps, and "your inputs" as a source on Interpolation and Orbits; the
inputs survive page switches and are kept per model."""

from __future__ import annotations

import json

from tests.app.apptest import run_app


def _errors(at):
    return [e.value for e in at.exception] + [e.value for e in at.error]


def _captions(at) -> list[str]:
    return [c.value.replace("\\", "") for c in at.caption]  # captions escape Markdown


def _map_specs(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def test_typed_smiles_reach_maps_interpolation_and_orbits(tiny_registry, monkeypatch):
    monkeypatch.setenv("ELX_MAP_COMPONENT", "0")  # st.plotly_chart: its figure is readable here
    at = run_app("app_pages/latent_maps.py")
    at.text_area(key="user_typed_molecules").set_value("OCC(O)CO, [H]OC([H])([H])C  CCS C[CH2] CC.O").run()
    assert not _errors(at), _errors(at)
    # the sidebar: the summary and one short line per rejected or adjusted row (no table: too narrow)
    assert not at.sidebar.table and not at.sidebar.dataframe
    lines = "\n".join(m.value for m in at.sidebar.markdown).replace("\\", "")
    assert "**Rejected**\n- line 3 · `CCS`: element not in C/N/O/F: atom S is not supported" in lines, lines
    assert "- line 4 · `C[CH2]`: radical: 'C[CH2]' has 1 unpaired electron(s) (on C)\n" in lines, lines
    assert "- line 5 · `CC.O`: disconnected: 'CC.O' has 2 fragments (CC + O)" in lines, lines
    assert "**Adjusted**\n- line 2 · `[H]OC([H])([H])C`: explicit [H] folded into their atoms: CCO" in lines, lines
    assert "line 1" not in lines  # a row parsed as written needs no line
    # the full table: in the page's main area, under the maps
    assert [e.label for e in at.main.expander if e.label == "Your inputs, row by row"]
    table = at.main.table[0].value
    table = table.data if hasattr(table, "data") else table  # a Styler
    assert list(table.columns) == ["source", "line", "name", "input", "result"]
    assert table["input"].tolist() == ["OCC(O)CO", "[H]OC([H])([H])C", "CCS", "C[CH2]", "CC.O"]
    assert table["result"].iloc[0] == "parsed"
    assert table["result"].iloc[1].startswith("parsed · explicit [H] folded into their atoms: CCO")
    assert table["result"].iloc[2].startswith("rejected: element not in C/N/O/F")
    assert table["result"].iloc[3].startswith("rejected: radical")
    assert table["result"].iloc[4].startswith("rejected: disconnected")
    assert any("2 parsed, 3 rejected" in m.value for m in at.markdown)
    maps = [s for s in _map_specs(at) if any(t.get("name") == "your inputs" for t in s["data"])]
    assert len(maps) == 2  # both maps
    for spec in maps:
        trace = next(t for t in spec["data"] if t.get("name") == "your inputs")
        assert trace["marker"]["symbol"] == "diamond"
    assert any("Diamonds with a magenta outline" in c.value for c in at.caption)

    at.switch_page("app_pages/interpolation.py").run()
    assert not _errors(at), _errors(at)
    at.radio(key="src_A__graph_vae_qm9").set_value("your inputs").run()
    at.radio(key="src_B__graph_vae_qm9").set_value("your inputs").run()
    assert not _errors(at), _errors(at)
    assert any(c.startswith("your input: OCC(O)CO") for c in _captions(at)), _captions(at)
    assert any(c.startswith("your input: CCO") for c in _captions(at)), _captions(at)
    assert any("All steps" in h.value for h in at.subheader)

    at.switch_page("app_pages/orbits.py").run()
    at.radio(key="orbit_src__graph_vae_qm9").set_value("your inputs").run()
    assert not _errors(at), _errors(at)
    assert any(c.startswith("your input: OCC(O)CO") for c in _captions(at)), _captions(at)
    assert any("your input as uploaded" in c for c in _captions(at))
    assert any(m.label == "Invariance error of the projection" for m in at.metric)

    # removing the text forgets the inputs
    at.text_area(key="user_typed_molecules").set_value("").run()
    at.switch_page("app_pages/latent_maps.py").run()
    assert not _errors(at)
    assert not any(t.get("name") == "your inputs" for s in _map_specs(at) for t in s["data"])


def test_a_file_level_error_is_shown_and_the_app_keeps_running(tiny_registry):
    at = run_app("app_pages/latent_maps.py")
    at.text_area(key="user_typed_molecules").set_value(" ".join(["C"] * 2001)).run()
    assert not at.exception
    assert any("at most 2,000" in e.value for e in at.error), _errors(at)


def test_sidebar_lines_name_the_file_when_there_are_several_and_count_what_they_leave_out():
    import pandas as pd

    from app_pages import _uploads

    n = _uploads.SIDEBAR_LINES + 3
    table = pd.DataFrame({"source": ["a.smi"] * n + ["seven.png"], "line": list(range(1, n + 1)) + [0],
                          "name": [""] * n + ["seven.png"], "input": ["C" * 40] * n + ["48 × 36 RGBA"],
                          "result": ["rejected: too large: 40 heavy atoms; at most 9"] * n
                          + ["parsed · inverted to white on black"]})
    (h1, rejected), (h2, adjusted) = _uploads.result_lines(table)
    assert (h1, h2) == ("Rejected", "Adjusted")
    assert len(rejected) == _uploads.SIDEBAR_LINES + 1 and rejected[-1] == "... and 3 more (see the full table)"
    assert rejected[0] == f"a.smi line 1 · `{'C' * (_uploads.SHORT_INPUT - 1)}\u2026`: too large\\: 40 heavy atoms"
    assert adjusted == ["seven.png · `48 × 36 RGBA`: inverted to white on black"]  # an image: its file
    assert _uploads.result_lines(table.iloc[:0]) == []
