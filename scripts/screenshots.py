"""Regenerate the README screenshots from the shipped weights and the full data sets.

Starts ``streamlit run app.py`` on 127.0.0.1 with all of QM9 and all 5,000 rotated-MNIST
digits (the encode cache in ``.cache/`` is reused; a cold start encodes first), drives
Debian's Chromium with Playwright and writes

* ``assets/screenshot_maps.png``: Latent maps, QM9, coloured by the HOMO-LUMO gap;
* ``assets/screenshot_mnist_maps.png``: Latent maps, rotated MNIST, coloured by digit;
* ``assets/screenshot_interpolation.png``: Interpolation, QM9, a random pair (seed ``--pair-seed``).

    python scripts/screenshots.py                 # all three
    python scripts/screenshots.py --only interpolation --pair-seed 3

Nothing is asserted; look at the pictures.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e import driver as d  # noqa: E402
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, start_app  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Take the screenshots; returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["maps", "mnist", "interpolation"], default=None)
    ap.add_argument("--pair-seed", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "assets"))
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="elx_shots_"))
    proc, url = start_app(ROOT / ".cache", work / "streamlit.log",
                          {"ELX_QM9_SUBSET": "0", "ELX_MNIST_LIMIT": "0"})
    shots = [("maps", "latent_maps", {"model": "graph_vae_qm9", "color": "gap"}, "screenshot_maps.png"),
             ("mnist", "latent_maps", {"model": "rot_mnist_c8", "color": "label"}, "screenshot_mnist_maps.png"),
             ("interpolation", "interpolation", {"model": "graph_vae_qm9", "pair_seed": str(args.pair_seed)},
              "screenshot_interpolation.png")]
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1500, "height": 1400})
            for name, path, params, fname in shots:
                if args.only and args.only != name:
                    continue
                d.open_page(page, url, path, **params)
                d.wait_idle(page, timeout=900)
                d.assert_no_exception(page)
                page.screenshot(path=str(out / fname), full_page=True)
                print(f"wrote {out / fname}")
            browser.close()
    finally:
        proc.terminate()
        proc.wait(20)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
