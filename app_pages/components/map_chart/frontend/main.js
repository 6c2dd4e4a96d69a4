// A map chart that stays mounted (see app_pages/components/map_chart/__init__.py): Plotly draws
// the axes, colour bar, legend and small traces (SVG); this script draws the points into a
// canvas inside Plotly's plot area and answers clicks, box and lasso selections with row ids. The
// page's current selection (spec.selected, from either map) is drawn at full colour, the rest dimmed.
(function () {
  "use strict";
  const send = (type, extra) => window.parent.postMessage(Object.assign({isStreamlitMessage: true, type}, extra), "*");
  const gd = document.getElementById("chart"), tip = document.getElementById("tip");
  const S = {rev: null, coordsRev: null, spec: null, specText: null, x: null, y: null, rows: null, group: null,
             n: 0, groups: [], colours: null, sizes: null, mask: null, selected: null, pending: null, busy: false,
             px: null, py: null, cellStart: null, cellItems: null, cols: 0, cellsY: 0, cell: 8, seq: Date.now(),
             config: {}, height: 460};
  gd._elxStats = {renders: 0, draws: 0, reacts: 0, draw_ms: 0, react_ms: 0};
  let plotlyReady = false;

  function parseColour(c) { // -> [r, g, b] of any CSS colour
    const cv = parseColour.cv || (parseColour.cv = document.createElement("canvas"));
    cv.width = cv.height = 1;
    const ctx = cv.getContext("2d", {willReadFrequently: true});
    ctx.clearRect(0, 0, 1, 1); ctx.fillStyle = "#000"; ctx.fillStyle = c; ctx.fillRect(0, 0, 1, 1);
    const d = ctx.getImageData(0, 0, 1, 1).data;
    return [d[0], d[1], d[2]];
  }

  function decodePoints(bytes, n, sameCoords) {
    const buf = bytes.slice().buffer; // an aligned copy of our part of the message
    if (!sameCoords) {
      S.x = new Float32Array(buf, 0, n); S.y = new Float32Array(buf, 4 * n, n); S.rows = new Int32Array(buf, 8 * n, n);
      S.mask = null;
    }
    S.group = new Uint16Array(buf, 12 * n, n);
    S.n = n;
  }

  function axes() {
    const fl = gd._fullLayout;
    return fl && fl.xaxis && fl.yaxis ? [fl.xaxis, fl.yaxis] : null;
  }

  function layer() { // the canvas, first child of the plot area's group (under Plotly's traces)
    const info = gd._fullLayout && gd._fullLayout._plots && gd._fullLayout._plots.xy;
    const plot = info && info.plot && info.plot.node ? info.plot.node() : null;
    if (!plot) return null;
    let fo = plot.querySelector(":scope > foreignObject.elx-points");
    if (!fo) {
      fo = document.createElementNS("http://www.w3.org/2000/svg", "foreignObject");
      fo.setAttribute("class", "elx-points");
      fo.style.pointerEvents = "none";
      const cv = document.createElement("canvas");
      cv.style.display = "block";
      fo.appendChild(cv);
      plot.insertBefore(fo, plot.firstChild);
    }
    return fo;
  }

  function hiddenGroups() {
    const hidden = new Uint8Array(S.groups.length);
    for (const t of gd._fullData || []) {
      const m = typeof t.meta === "string" && t.meta.startsWith("elx_group_") ? +t.meta.slice(10) : -1;
      if (m >= 0 && t.visible !== true) hidden[m] = 1;
    }
    return hidden;
  }

  function draw() { // all points into the canvas; screen positions and a grid index for hover / click
    const ax = axes(), fo = layer();
    if (!ax || !fo || !S.x) return;
    const t0 = performance.now();
    const [xa, ya] = ax, W = Math.max(1, Math.round(xa._length)), H = Math.max(1, Math.round(ya._length));
    fo.setAttribute("x", 0); fo.setAttribute("y", 0); fo.setAttribute("width", W); fo.setAttribute("height", H);
    const cv = fo.firstChild;
    if (cv.width !== W || cv.height !== H) { cv.width = W; cv.height = H; }
    const ctx = cv.getContext("2d"), img = ctx.createImageData(W, H), d = new Uint32Array(img.data.buffer);
    const mx = xa.l2p(1) - xa.l2p(0), bx = xa.l2p(0), my = ya.l2p(1) - ya.l2p(0), by = ya.l2p(0);
    const n = S.n, x = S.x, y = S.y, g = S.group, hidden = hiddenGroups(), mask = S.mask;
    const G = S.groups.length, on = new Uint32Array(G), dim = new Uint32Array(G), half = new Int32Array(G),
          side = new Int32Array(G);
    S.groups.forEach((gr, k) => {
      const [r, gg, b] = parseColour(gr.color), a = Math.max(0, Math.min(1, gr.opacity));
      on[k] = ((Math.round(255 * a) << 24) | (b << 16) | (gg << 8) | r) >>> 0;
      dim[k] = ((Math.round(255 * a * 0.2) << 24) | (b << 16) | (gg << 8) | r) >>> 0;
      side[k] = Math.max(1, Math.round(gr.size)); half[k] = side[k] >> 1;
    });
    const px = S.px && S.px.length === n ? S.px : (S.px = new Float32Array(n));
    const py = S.py && S.py.length === n ? S.py : (S.py = new Float32Array(n));
    const cell = S.cell, cols = Math.ceil(W / cell) + 1, cellsY = Math.ceil(H / cell) + 1;
    const count = new Uint32Array(cols * cellsY + 1), cellOf = new Int32Array(n);
    // unselected points first, then the selected ones on top
    for (let pass = 0; pass < (mask ? 2 : 1); pass++) {
      for (let i = 0; i < n; i++) {
        const k = g[i];
        if (hidden[k]) { if (pass === 0) cellOf[i] = -1; continue; }
        if (mask && (mask[i] ? pass === 0 : pass === 1)) continue;
        const sx = mx * x[i] + bx, sy = my * y[i] + by;
        px[i] = sx; py[i] = sy;
        if (!(sx >= 0 && sx < W && sy >= 0 && sy < H)) { cellOf[i] = -1; continue; }
        const c = ((sy / cell) | 0) * cols + ((sx / cell) | 0);
        cellOf[i] = c; count[c + 1]++;
        const col = mask && !mask[i] ? dim[k] : on[k], s = side[k];
        const x0 = Math.max(0, (sx | 0) - half[k]), y0 = Math.max(0, (sy | 0) - half[k]);
        const x1 = Math.min(W, x0 + s), y1 = Math.min(H, y0 + s);
        for (let yy = y0; yy < y1; yy++) { const o = yy * W; for (let xx = x0; xx < x1; xx++) d[o + xx] = col; }
      }
    }
    ctx.putImageData(img, 0, 0);
    for (let c = 0; c < cols * cellsY; c++) count[c + 1] += count[c];
    const items = new Uint32Array(count[cols * cellsY]), fill = count.slice(0, cols * cellsY);
    for (let i = 0; i < n; i++) if (cellOf[i] >= 0) items[fill[cellOf[i]]++] = i;
    S.cellStart = count; S.cellItems = items; S.cols = cols; S.cellsY = cellsY;
    gd._elxStats.draws += 1; gd._elxStats.draw_ms += performance.now() - t0;
  }

  function nearest(cx, cy, radius) { // index of the drawn point nearest to plot-area pixel (cx, cy)
    if (!S.cellStart) return -1;
    const cell = S.cell, r = Math.ceil(radius / cell);
    const c0 = Math.floor(cx / cell), r0 = Math.floor(cy / cell);
    let best = -1, bd = radius * radius;
    for (let rr = r0 - r; rr <= r0 + r; rr++) {
      if (rr < 0 || rr >= S.cellsY) continue;
      for (let cc = c0 - r; cc <= c0 + r; cc++) {
        if (cc < 0 || cc >= S.cols) continue;
        const c = rr * S.cols + cc;
        for (let j = S.cellStart[c]; j < S.cellStart[c + 1]; j++) {
          const i = S.cellItems[j], dx = S.px[i] - cx, dy = S.py[i] - cy, dd = dx * dx + dy * dy;
          if (dd <= bd) { bd = dd; best = i; }
        }
      }
    }
    return best;
  }

  function plotXY(ev) { // mouse event -> plot-area pixels
    const ax = axes();
    if (!ax) return null;
    const r = gd.getBoundingClientRect();
    return [ev.clientX - r.left - ax[0]._offset, ev.clientY - r.top - ax[1]._offset];
  }

  function report(rows, kind) {
    S.seq += 1;
    send("streamlit:setComponentValue", {value: {rows, kind, seq: S.seq}, dataType: "json"});
  }

  function setSelection(idx) { // indices of points -> mask (null: no selection)
    if (idx === null) { S.mask = null; return; }
    S.mask = new Uint8Array(S.n);
    for (const i of idx) S.mask[i] = 1;
  }

  function applySelected() { // the page's selection (row ids, ascending) -> mask; rows are ascending too
    const sel = S.selected;
    if (!sel || !sel.length || !S.rows) { S.mask = null; return; }
    const mask = new Uint8Array(S.n), rows = S.rows;
    for (let i = 0, j = 0; i < S.n && j < sel.length;) {
      if (rows[i] === sel[j]) { mask[i] = 1; i++; j++; } else if (rows[i] < sel[j]) i++; else j++;
    }
    S.mask = mask;
  }

  function extraRows(points) { // row ids of Plotly-drawn traces' selected points (not the extent trace)
    const out = [];
    for (const p of points || []) {
      if (p.data && p.data.meta === "elx_extent") continue;
      const cd = Array.isArray(p.customdata) ? p.customdata[0] : p.customdata;
      if (cd !== undefined && cd !== null && Number(cd) >= 0) out.push(Number(cd));
    }
    return out;
  }

  function onSelected(e) {
    if (!e || !S.x) return;
    const hidden = hiddenGroups(), idx = [], n = S.n, x = S.x, y = S.y, g = S.group;
    let kind;
    if (e.range && e.range.x && e.range.y) {
      kind = "box";
      const [x0, x1] = [Math.min(...e.range.x), Math.max(...e.range.x)];
      const [y0, y1] = [Math.min(...e.range.y), Math.max(...e.range.y)];
      for (let i = 0; i < n; i++) if (!hidden[g[i]] && x[i] >= x0 && x[i] <= x1 && y[i] >= y0 && y[i] <= y1) idx.push(i);
    } else if (e.lassoPoints && e.lassoPoints.x) {
      kind = "lasso";
      const lx = e.lassoPoints.x.map(Number), ly = e.lassoPoints.y.map(Number), m = lx.length;
      const x0 = Math.min(...lx), x1 = Math.max(...lx), y0 = Math.min(...ly), y1 = Math.max(...ly);
      for (let i = 0; i < n; i++) {
        const xi = x[i], yi = y[i];
        if (hidden[g[i]] || !(xi >= x0 && xi <= x1 && yi >= y0 && yi <= y1)) continue;
        let inside = false;
        for (let a = 0, b = m - 1; a < m; b = a++) {
          if ((ly[a] > yi) !== (ly[b] > yi) && xi < (lx[b] - lx[a]) * (yi - ly[a]) / (ly[b] - ly[a]) + lx[a]) inside = !inside;
        }
        if (inside) idx.push(i);
      }
    } else {
      return;
    }
    setSelection(idx);
    draw();
    const rows = idx.map(i => S.rows[i]).concat(extraRows(e.points));
    report(rows, kind);
  }

  // a click: press and release without moving more than 3 px in between (a lasso may end where it began)
  let down = null, lastClick = 0;
  function onDown(ev) { down = ev.button === 0 ? [ev.clientX, ev.clientY] : null; hideTip(); }
  function onDrag(ev) {
    if (down && Math.hypot(ev.clientX - down[0], ev.clientY - down[1]) > 3) down = null;
  }
  function onUp(ev) {
    if (!down || Math.hypot(ev.clientX - down[0], ev.clientY - down[1]) > 3) { down = null; return; }
    down = null;
    const p = plotXY(ev), ax = axes();
    if (!p || !ax || p[0] < 0 || p[1] < 0 || p[0] > ax[0]._length || p[1] > ax[1]._length) return;
    const i = nearest(p[0], p[1], 6);
    if (i < 0) return;
    lastClick = performance.now();
    setSelection([i]);
    draw();
    report([S.rows[i]], "points");
  }

  function hideTip() { tip.style.display = "none"; }
  function onMove(ev) {
    if (ev.buttons) { hideTip(); return; }
    const p = plotXY(ev);
    const i = p ? nearest(p[0], p[1], 6) : -1;
    if (i < 0) { hideTip(); return; }
    const gr = S.groups[S.group[i]];
    tip.innerHTML = String(gr.hover).replace(/<extra>.*?<\/extra>/g, "")
      .replace(/%\{customdata(\[0\])?\}/g, String(S.rows[i]));
    tip.style.background = gr.color;
    tip.style.display = "block";
    const w = tip.offsetWidth, left = ev.clientX + 12 + w > window.innerWidth ? ev.clientX - 12 - w : ev.clientX + 12;
    tip.style.left = left + "px"; tip.style.top = (ev.clientY - 10) + "px";
  }

  function attach() {
    gd.on("plotly_afterplot", draw);
    gd.on("plotly_selected", onSelected);
    gd.on("plotly_deselect", () => {
      if (performance.now() - lastClick < 400) return; // the second click of a double-click on a point
      setSelection(null); draw(); report([], "none");
    });
    gd.on("plotly_legendclick", () => { setTimeout(draw, 0); return true; });
    gd.addEventListener("mousedown", onDown, true);
    window.addEventListener("mouseup", onUp, true); // Plotly covers the page while the button is down
    window.addEventListener("mousemove", onDrag, true);
    gd.addEventListener("mousemove", onMove);
    gd.addEventListener("mouseleave", hideTip);
  }

  async function render(args) {
    const t0 = performance.now();
    const sameCoords = args.coords_rev === S.coordsRev && S.x !== null;
    decodePoints(args.points, args.n, sameCoords);
    S.coordsRev = args.coords_rev;
    S.height = args.height || 460;
    send("streamlit:setFrameHeight", {height: S.height});
    if (args.spec !== S.specText || args.config !== S.configText) {
      const spec = JSON.parse(args.spec), config = Object.assign({responsive: true, displaylogo: false},
                                                                   JSON.parse(args.config || "{}"));
      S.specText = args.spec; S.configText = args.config; S.groups = spec.groups;
      S.selected = spec.selected || null; applySelected(); // the page's selection, from either map
      const layout = Object.assign({}, spec.layout, {autosize: true, height: S.height, clickmode: "event"});
      delete layout.width;
      const first = !gd._fullLayout, drawn = gd._elxStats.draws;
      await Plotly.react(gd, spec.data, layout, config); // draws the points (plotly_afterplot)
      gd._elxStats.reacts += 1; gd._elxStats.react_ms += performance.now() - t0;
      if (first) attach();
      if (gd._elxStats.draws === drawn) draw();
    } else {
      if (!sameCoords) applySelected(); // new coordinates, the same selection
      draw();
    }
    gd._elxPoints = {x: S.x, y: S.y, rows: S.rows, group: S.group, n: S.n, get mask() { return S.mask; }};
    gd._elxStats.renders += 1;
    await new Promise(r => requestAnimationFrame(r));
    gd._elxRev = args.rev;
  }

  async function pump() { // one render at a time; only the newest pending arguments count
    if (S.busy || !plotlyReady) return;
    S.busy = true;
    try {
      while (S.pending) {
        const args = S.pending; S.pending = null;
        if (args.rev === S.rev) continue;
        S.rev = args.rev;
        try { await render(args); } catch (err) { console.warn("map chart:", err); }
      }
    } finally { S.busy = false; }
  }

  window.addEventListener("message", (ev) => {
    if (ev.data && ev.data.type === "streamlit:render") { S.pending = ev.data.args; pump(); }
  });
  window.elxMapChart = {
    plotlyLoaded() { plotlyReady = true; pump(); },
    busy() { return !plotlyReady || S.busy || S.pending !== null || S.rev === null; }, // for tests
  };
  send("streamlit:setFrameHeight", {height: 460});
  send("streamlit:componentReady", {apiVersion: 1});
})();
