"""Small Playwright helpers for driving the Streamlit app like a user (no test logic here)."""

from __future__ import annotations

import time
import urllib.parse


class PageWatch:
    """Collects what a user would see go wrong: console errors, uncaught page errors, failed
    requests to the app, and counts the bytes the server sends over the websocket."""

    def __init__(self, page):
        self.errors: list[str] = []
        self.ws_bytes = 0
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        page.on("response", self._response)
        page.on("websocket", self._websocket)
        page._elx_watch = self

    def _console(self, msg):
        if msg.type == "error" and "Failed to load resource" not in msg.text:
            self.errors.append(f"console: {msg.text}")

    def _response(self, response):
        # Streamlit's frontend, opened on a page's URL (/latent_maps), first probes the page
        # path as a base path (/latent_maps/_stcore/health, .../host-config), gets a 404 and
        # then uses /; that is how Streamlit finds its base path, not an error of the app.
        path = urllib.parse.urlparse(response.url).path
        probe = path.count("/") >= 3 and path.rsplit("/", 2)[-2] == "_stcore" and \
            path.endswith(("/_stcore/health", "/_stcore/host-config"))
        if response.status >= 400 and not probe:
            self.errors.append(f"HTTP {response.status}: {response.url}")

    def _websocket(self, ws):
        def count(payload):
            self.ws_bytes += len(payload)
        ws.on("framereceived", count)

    def problems(self) -> list[str]:
        return list(self.errors)


def watch(page) -> PageWatch:
    return page._elx_watch


def wait_idle(page, timeout: float = 300.0, quiet: float = 0.8) -> None:
    """Wait until the script run is over: no 'Running' status widget, no spinner, no status
    container still running, for ``quiet`` seconds in a row."""
    deadline = time.time() + timeout
    calm_since = None
    # the map component (an iframe) has drawn its newest arguments
    js = """() => !document.querySelector('[data-testid="stStatusWidget"]')
                  && !document.querySelector('[data-testid="stSpinner"]')
                  && !document.querySelector('[data-testid="stSkeleton"]')
                  && [...document.querySelectorAll('iframe[data-testid="stCustomComponentV1"]')].every(f => {
                       try { const m = f.contentWindow.elxMapChart; return !m || !m.busy(); } catch (e) { return true; } })"""
    while time.time() < deadline:
        if page.evaluate(js):
            calm_since = calm_since or time.time()
            if time.time() - calm_since >= quiet:
                return
        else:
            calm_since = None
        time.sleep(0.1)
    raise TimeoutError(f"the app did not settle in {timeout} s")


def open_page(page, base: str, path: str = "", **params) -> None:
    """Open ``base/path?params`` and wait for the run to finish."""
    query = "&".join(f"{k}={v}" for k, v in params.items())
    page.goto(f"{base}/{path}" + (f"?{query}" if query else ""))
    page.wait_for_selector('[data-testid="stApp"]', timeout=60_000)
    time.sleep(0.5)
    wait_idle(page)


def assert_no_exception(page) -> None:
    boxes = page.locator('[data-testid="stException"]')
    assert boxes.count() == 0, boxes.first.inner_text()[:2000]


def charts(page):
    """The ``st.plotly_chart`` charts of the page (not the map component's, see :data:`CHARTS_JS`)."""
    return page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot')


#: JavaScript expression: every Plotly chart of the page in document order, as ``{gd, ox, oy, el,
#: frame}``: ``st.plotly_chart``'s charts and the map component's (``app_pages/components/
#: map_chart``: a Plotly chart inside an iframe whose points the component draws itself,
#: ``gd._elxPoints``); ``ox``, ``oy`` offset the chart's own screen coordinates to the page's,
#: ``el`` is the element in the page (the chart or its iframe), ``frame`` the iframe's index
#: among the page's component iframes (-1 for ``st.plotly_chart``)
CHARTS_JS = """(() => { const out = []; let k = -1;
    for (const el of document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot, '
                                               + 'iframe[data-testid="stCustomComponentV1"]')) {
      if (el.tagName !== 'IFRAME') { out.push({gd: el, ox: 0, oy: 0, el, frame: -1}); continue; }
      k += 1; const doc = el.contentDocument, gd = doc && doc.getElementById('chart');
      if (!gd || !gd._fullLayout) continue;
      const r = el.getBoundingClientRect(); out.push({gd, ox: r.left, oy: r.top, el, frame: k}); }
    return out; })()"""


def chart_count(page) -> int:
    """Number of Plotly charts on the page (``st.plotly_chart`` and the map component's)."""
    return page.evaluate(f"() => {CHARTS_JS}.length")


def chart_index_by_title(page, title_start: str) -> int:
    """Index (among all Plotly charts on the page, :data:`CHARTS_JS`) of the chart drawn under
    the bold title that starts with ``title_start``."""
    return page.evaluate(
        f"""(t) => {{ const all = {CHARTS_JS};
        const heads = [...document.querySelectorAll('strong, b')].filter(e => e.innerText.startsWith(t));
        if (!heads.length) return -1;
        const h = heads[0]; let best = -1;
        all.forEach((c, i) => {{ if (best < 0 && (h.compareDocumentPosition(c.el) & Node.DOCUMENT_POSITION_FOLLOWING)) best = i; }});
        return best; }}""", title_start)


def point_positions(page, chart: int, trace: int = 0, limit: int | None = None):
    """Screen pixels (x, y) and row ids (customdata) of the points of one trace Plotly draws."""
    return page.evaluate(
        f"""([c, t, limit]) => {{ const {{gd, ox, oy}} = {CHARTS_JS}[c];
        const fl = gd._fullLayout, tr = gd._fullData[t], r = gd.getBoundingClientRect();
        const xa = fl[tr.xaxis === 'x' ? 'xaxis' : 'xaxis' + tr.xaxis.slice(1)];
        const ya = fl[tr.yaxis === 'y' ? 'yaxis' : 'yaxis' + tr.yaxis.slice(1)];
        const n = limit === null ? tr.x.length : Math.min(limit, tr.x.length); const out = [];
        for (let i = 0; i < n; i++) {{
          const cd = (tr.customdata || [])[i];
          out.push([ox + r.left + xa._offset + xa.l2p(tr.x[i]), oy + r.top + ya._offset + ya.l2p(tr.y[i]),
                    Array.isArray(cd) ? cd[0] : Number(cd)]); }}
        return out; }}""", [chart, trace, limit])


def map_points(page, chart: int):
    """Screen pixels (x, y) and row ids of every point of a map: the points of all its Plotly
    traces and, for the map component, the points it draws itself (``gd._elxPoints``)."""
    return page.evaluate(
        f"""(c) => {{ const {{gd, ox, oy}} = {CHARTS_JS}[c];
        const fl = gd._fullLayout, r = gd.getBoundingClientRect(), out = [];
        const X = (xa, v) => ox + r.left + xa._offset + xa.l2p(v), Y = (ya, v) => oy + r.top + ya._offset + ya.l2p(v);
        for (const tr of gd._fullData) {{
          if (tr.meta === 'elx_extent' || !tr.x) continue;
          const xa = fl[tr.xaxis === 'x' ? 'xaxis' : 'xaxis' + tr.xaxis.slice(1)];
          const ya = fl[tr.yaxis === 'y' ? 'yaxis' : 'yaxis' + tr.yaxis.slice(1)];
          for (let i = 0; i < tr.x.length; i++) {{ const cd = (tr.customdata || [])[i];
            if (tr.x[i] === null || tr.x[i] === undefined) continue;
            out.push([X(xa, tr.x[i]), Y(ya, tr.y[i]), Array.isArray(cd) ? cd[0] : Number(cd)]); }} }}
        const p = gd._elxPoints;
        if (p) for (let i = 0; i < p.n; i++) out.push([X(fl.xaxis, p.x[i]), Y(fl.yaxis, p.y[i]), p.rows[i]]);
        return out; }}""", chart)


def points_per_chart(page) -> list[int]:
    """Per chart (:data:`CHARTS_JS`): the points with a ``customdata`` entry of its Plotly traces
    plus the points the map component draws itself."""
    return page.evaluate(f"""() => {CHARTS_JS}.map(({{gd}}) => gd._fullData.reduce((n, t) =>
        n + (t.meta === 'elx_extent' ? 0 : ((t.customdata && t.customdata.length) || 0)), 0)
        + (gd._elxPoints ? gd._elxPoints.n : 0))""")


def plot_area(page, chart: int):
    """Screen rectangle (left, top, width, height) of a chart's plotting area."""
    return page.evaluate(
        f"""(c) => {{ const {{gd, ox, oy}} = {CHARTS_JS}[c];
        const fl = gd._fullLayout, r = gd.getBoundingClientRect();
        return [ox + r.left + fl.xaxis._offset, oy + r.top + fl.yaxis._offset, fl.xaxis._length, fl.yaxis._length]; }}""",
        chart)


def choose_tool(page, chart: int, tool: str) -> None:
    """Pick a Plotly toolbar tool (``lasso``, ``select``, ``pan``) of one chart."""
    frame = page.evaluate(f"(c) => {CHARTS_JS}[c].frame", chart)
    if frame < 0:
        idx = page.evaluate(f"(c) => {{ const a = {CHARTS_JS}; return a.filter(x => x.frame < 0).indexOf(a[c]); }}",
                            chart)
        gd = charts(page).nth(idx)
    else:
        gd = page.frame_locator('iframe[data-testid="stCustomComponentV1"]').nth(frame).locator(".js-plotly-plot")
    gd.hover()
    gd.locator(f'.modebar-btn[data-attr="dragmode"][data-val="{tool}"]').first.click()


def draw_path(page, points) -> None:
    """Press, move through ``points`` (screen pixels) and release: a lasso or box drag."""
    page.mouse.move(*points[0])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(x, y, steps=4)
    page.mouse.up()


def inside_polygon(x: float, y: float, poly) -> bool:
    """Even-odd rule point-in-polygon test in screen pixels."""
    inside = False
    j = len(poly) - 1
    for i in range(len(poly)):
        xi, yi = poly[i]
        xj, yj = poly[j]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def combobox(page, label: str):
    """The select box labelled ``label`` (Streamlit 1.67: a react-aria combobox input whose
    value is the shown option)."""
    return page.get_by_role("combobox", name=label).first


def open_options(page, label: str) -> list[str]:
    """Open the select box ``label``; return the texts of its options (left open)."""
    combobox(page, label).click()
    options = page.get_by_role("option")
    options.first.wait_for(timeout=10_000)
    return [options.nth(i).inner_text().strip() for i in range(options.count())]


def choose_option(page, label: str, option_text: str) -> None:
    """Pick the option ``option_text`` of the select box ``label`` and wait for the run."""
    if not page.get_by_role("option").count():
        open_options(page, label)
    page.get_by_role("option").filter(has_text=option_text).first.click()
    time.sleep(0.3)
    wait_idle(page)


def click_radio(page, label: str, option_text: str) -> None:
    """Click the option ``option_text`` of the radio group labelled ``label``."""
    group = page.locator('[data-testid="stRadio"]').filter(has_text=label).first
    group.locator("label").filter(has_text=option_text).first.click()
    time.sleep(0.3)
    wait_idle(page)


def type_into(page, label: str, text: str) -> None:
    """Replace the text of the input labelled ``label``, press Enter and wait for the run."""
    box = page.get_by_label(label)
    box.fill(text)
    box.press("Enter")
    time.sleep(0.3)
    wait_idle(page)


def goto_nav(page, title: str) -> None:
    """Click a page in the sidebar navigation."""
    page.locator('[data-testid="stSidebarNav"] a').filter(has_text=title).first.click()
    time.sleep(0.5)
    wait_idle(page)


def selection_rings(page, chart: int):
    """Screen pixels (x, y) of the selection's ring markers on one map (the trace with
    ``meta="elx_selection"``, :func:`backend.plots.selection_rings`); empty without one."""
    idx = page.evaluate(f"(c) => {CHARTS_JS}[c].gd._fullData.findIndex(t => t.meta === 'elx_selection')", chart)
    return [] if idx < 0 else [p[:2] for p in point_positions(page, chart, idx)]


def full_colour_rows(page, chart: int):
    """Row ids the map component draws at full colour while it dims the others (its selection
    mask), or None when nothing is dimmed (no selection, or not the map component)."""
    return page.evaluate(
        f"""(c) => {{ const p = {CHARTS_JS}[c].gd._elxPoints;
        if (!p || !p.mask) return null; const out = [];
        for (let i = 0; i < p.n; i++) if (p.mask[i]) out.push(p.rows[i]);
        return out; }}""", chart)
