// vaelab explore: the page. Plain JS, no libraries; every model call goes to the local server.
"use strict";

(function () {
  const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                   "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  const MAP_CSS = 360;          // map canvas size in CSS pixels
  const SNAP_PX = 6;            // a click this close to a test code picks that test image
  const state = {
    info: null,                 // GET /api/runs
    maps: [],                   // per run: {x, y, labels, view, base}
    marks: [],                  // per run: overlay marks on the map
    ends: {a: {kind: "index", index: 0}, b: {kind: "index", index: 1}},
    slider: [],                 // per run: {base: code, code: code}
    samplePoints: [],           // per run: map points of the last prior samples
    latency: [],                // per run: recent hover round-trips (ms)
  };

  // ------------------------------------------------------------------------ helpers
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else node.setAttribute(k, v);
    }
    for (const c of children || []) node.appendChild(c);
    return node;
  }

  function status(message) {
    $("status").textContent = message || "";
  }

  let inFlight = 0;  // requests awaiting an answer; body[data-busy] lets tests wait for quiet

  async function api(path, body) {
    inFlight += 1;
    document.body.dataset.busy = String(inFlight);
    try {
      return await request(path, body);
    } finally {
      inFlight -= 1;
      document.body.dataset.busy = String(inFlight);
      // page-load benchmark: when the first screenful of answers is complete
      if (!inFlight && document.body.dataset.ready === "1" && !document.body.dataset.settledMs) {
        document.body.dataset.settledMs = performance.now().toFixed(1);
      }
    }
  }

  async function request(path, body) {
    const options = body === undefined ? {} : {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify(body),
    };
    const response = await fetch(path, options);
    const data = await response.json();
    if (!response.ok) throw new Error(`${path}: ${data.error || response.status}`);
    return data;
  }

  function fail(error) {
    status(String(error.message || error));
    console.error(error);
  }

  // One request in flight per (channel, run); a newer request replaces any waiting one, so a
  // fast mouse never builds a queue and the last position always gets decoded.
  const lanes = new Map();
  function latest(key, send, onResult) {
    let lane = lanes.get(key);
    if (!lane) { lane = {busy: false, next: null}; lanes.set(key, lane); }
    lane.next = {send, onResult};
    if (!lane.busy) pump(lane);
  }
  async function pump(lane) {
    while (lane.next) {
      const job = lane.next;
      lane.next = null;
      lane.busy = true;
      try { job.onResult(await job.send()); } catch (e) { fail(e); }
      lane.busy = false;
    }
  }

  function bytesOf(b64) {
    const text = atob(b64);
    const out = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
    return out;
  }

  function paint(canvas, b64) {
    const [c, h, w] = state.info.image_shape;
    const bytes = bytesOf(b64);
    const off = document.createElement("canvas");
    off.width = w; off.height = h;
    const octx = off.getContext("2d");
    const img = octx.createImageData(w, h);
    for (let i = 0; i < h * w; i++) {
      const r = bytes[i], g = c === 3 ? bytes[h * w + i] : r, b = c === 3 ? bytes[2 * h * w + i] : r;
      img.data[4 * i] = r; img.data[4 * i + 1] = g; img.data[4 * i + 2] = b; img.data[4 * i + 3] = 255;
    }
    octx.putImageData(img, 0, 0);
    const ctx = canvas.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(off, 0, 0, canvas.width, canvas.height);
    canvas.dataset.version = String((Number(canvas.dataset.version) || 0) + 1);
  }

  function pixels(b64) {  // a served image as the [0, 1] floats an endpoint expects
    return Array.from(bytesOf(b64), (v) => v / 255);
  }

  function digitCanvas(size, cls) {
    const [, h, w] = state.info.image_shape;
    const scale = size === "big" ? 4 : 2;
    return el("canvas", {class: `digit ${cls || size}`, width: w * scale, height: h * scale});
  }

  function className(label) {
    const names = state.info.class_names;
    return names ? names[label] : String(label);
  }

  function readingText(r) {
    return `${className(r.label)} · ${(100 * r.confidence).toFixed(0)}%`;
  }

  function cell(b64, reading) {
    const canvas = digitCanvas("small");
    paint(canvas, b64);
    const lbl = el("span", {class: reading.confidence < 0.5 ? "lbl unsure" : "lbl",
                            text: readingText(reading)});
    return el("div", {class: "cell"}, [canvas, lbl]);
  }

  function columns(containerId, build) {
    const box = $(containerId);
    box.textContent = "";
    box.style.setProperty("--columns", String(state.info.runs.length));
    return state.info.runs.map((run, i) => {
      const title = el("h3", {}, [document.createTextNode(`${run.name} `),
                                  el("span", {class: "kind", text: `${run.kind}, nz = ${run.latent_dim}`})]);
      const col = el("div", {class: "run-col", "data-run": String(i)}, [title]);
      box.appendChild(col);
      return build(col, run, i);
    });
  }

  // ------------------------------------------------------------------------ latent map
  function makeView(m) {
    let x0 = Math.min(...m.x), x1 = Math.max(...m.x), y0 = Math.min(...m.y), y1 = Math.max(...m.y);
    if (!(x1 > x0)) { x0 -= 1; x1 += 1; }
    if (!(y1 > y0)) { y0 -= 1; y1 += 1; }
    const pad = 12, span = Math.max(x1 - x0, y1 - y0);
    const scale = (MAP_CSS - 2 * pad) / span;      // equal aspect: distances stay comparable
    const cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
    return {
      toPx: (x, y) => [MAP_CSS / 2 + (x - cx) * scale, MAP_CSS / 2 - (y - cy) * scale],
      toMap: (px, py) => [cx + (px - MAP_CSS / 2) / scale, cy - (py - MAP_CSS / 2) / scale],
    };
  }

  function drawBase(i) {
    const m = state.maps[i];
    const dpr = window.devicePixelRatio || 1;
    const base = document.createElement("canvas");
    base.width = MAP_CSS * dpr; base.height = MAP_CSS * dpr;
    const ctx = base.getContext("2d");
    ctx.scale(dpr, dpr);
    ctx.globalAlpha = 0.7;
    for (let k = 0; k < m.x.length; k++) {
      const [px, py] = m.view.toPx(m.x[k], m.y[k]);
      ctx.fillStyle = PALETTE[m.labels[k] % PALETTE.length];
      ctx.beginPath(); ctx.arc(px, py, 2, 0, 2 * Math.PI); ctx.fill();
    }
    m.base = base;
  }

  function marker(ctx, view, pt, shape, color, label) {
    const [px, py] = view.toPx(pt[0], pt[1]);
    const inside = px >= 0 && px <= MAP_CSS && py >= 0 && py <= MAP_CSS;
    const x = Math.min(Math.max(px, 4), MAP_CSS - 4), y = Math.min(Math.max(py, 4), MAP_CSS - 4);
    ctx.strokeStyle = color; ctx.fillStyle = color; ctx.lineWidth = 2;
    ctx.beginPath();
    if (shape === "cross") {
      ctx.moveTo(x - 7, y); ctx.lineTo(x + 7, y); ctx.moveTo(x, y - 7); ctx.lineTo(x, y + 7); ctx.stroke();
    } else if (shape === "ring") {
      ctx.arc(x, y, 6, 0, 2 * Math.PI); ctx.stroke();
    } else if (shape === "star") {
      for (let k = 0; k < 10; k++) {
        const r = k % 2 ? 3.5 : 9, a = -Math.PI / 2 + k * Math.PI / 5;
        ctx.lineTo(x + r * Math.cos(a), y + r * Math.sin(a));
      }
      ctx.closePath(); ctx.fill();
    } else if (shape === "diamond") {
      ctx.moveTo(x, y - 7); ctx.lineTo(x + 6, y); ctx.lineTo(x, y + 7); ctx.lineTo(x - 6, y);
      ctx.closePath(); ctx.stroke();
    } else {  // "x": a prior sample
      ctx.lineWidth = 1.5;
      ctx.moveTo(x - 3, y - 3); ctx.lineTo(x + 3, y + 3); ctx.moveTo(x + 3, y - 3); ctx.lineTo(x - 3, y + 3);
      ctx.stroke();
    }
    if (label) { ctx.font = "bold 12px system-ui, sans-serif"; ctx.fillText(label, x + 8, y - 6); }
    return inside;
  }

  function redraw(i) {
    const m = state.maps[i], marks = state.marks[i];
    const canvas = m.canvas, dpr = window.devicePixelRatio || 1;
    const ctx = canvas.getContext("2d");
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage(m.base, 0, 0);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    let outside = 0;
    if ($("show-samples").checked) {
      for (const p of state.samplePoints[i] || []) {
        if (!marker(ctx, m.view, p, "x", "#111")) outside += 1;
      }
    }
    if (marks.path) {
      ctx.strokeStyle = "rgba(0,0,0,0.55)"; ctx.lineWidth = 1.5; ctx.beginPath();
      marks.path.forEach((p, k) => { const [px, py] = m.view.toPx(p[0], p[1]); if (k) ctx.lineTo(px, py); else ctx.moveTo(px, py); });
      ctx.stroke();
    }
    if (marks.a) marker(ctx, m.view, marks.a, "ring", "#000", "A");
    if (marks.b) marker(ctx, m.view, marks.b, "ring", "#000", "B");
    if (marks.slider) marker(ctx, m.view, marks.slider, "diamond", "#6a3d9a");
    if (marks.drawing) marker(ctx, m.view, marks.drawing, "star", "#e31a1c");
    if (marks.pin) marker(ctx, m.view, marks.pin, "cross", "#000");
    if (marks.hover) marker(ctx, m.view, marks.hover, "cross", "#555");
    const n = (state.samplePoints[i] || []).length;
    m.outside.textContent = $("show-samples").checked && n
      ? `${outside} of ${n} prior samples (×) fall outside this view` : "";
  }

  function nearest(i, px, py) {
    const m = state.maps[i];
    let best = -1, bestD = Infinity;
    for (let k = 0; k < m.x.length; k++) {
      const [qx, qy] = m.view.toPx(m.x[k], m.y[k]);
      const d = (qx - px) ** 2 + (qy - py) ** 2;
      if (d < bestD) { bestD = d; best = k; }
    }
    return {index: best, dist: Math.sqrt(bestD)};
  }

  function buildMaps() {
    const maps = columns("map-runs", (col, run, i) => {
      const dpr = window.devicePixelRatio || 1;
      const canvas = el("canvas", {class: "map", width: MAP_CSS * dpr, height: MAP_CSS * dpr,
                                   "aria-label": `latent map of ${run.name}`});
      const decoded = digitCanvas("big");
      const reading = el("div", {class: "reading", text: "hover the map"});
      const where = el("div", {class: "small-text"});
      const timing = el("div", {class: "small-text"});
      const panel = el("div", {class: "decode-panel"}, [decoded, reading, where, timing]);
      const axes = run.map.exact ? "axes: z₁, z₂ (exact)"
        : `PCA axes explain ${(100 * run.map.explained[0]).toFixed(0)}% + ${(100 * run.map.explained[1]).toFixed(0)}% of the codes' variance`;
      const legend = el("div", {class: "legend"});
      const labels = state.info.class_names || [...Array(10).keys()].map(String);
      labels.forEach((name, k) => legend.appendChild(
        el("span", {}, [el("span", {class: `swatch c${k}`}), document.createTextNode(name)])));
      const outside = el("div", {class: "small-text"});
      col.append(el("div", {class: "map-row"}, [canvas, panel]), legend,
                 el("div", {class: "small-text", text: axes}), outside);
      legend.querySelectorAll(".swatch").forEach((s, k) => { s.style.background = PALETTE[k]; });
      return {canvas, decoded, reading, where, timing, outside};
    });
    maps.forEach((parts, i) => {
      const m = Object.assign(state.maps[i], parts);
      m.view = makeView(m);
      drawBase(i);
      redraw(i);
      const pos = (ev) => {
        const r = m.canvas.getBoundingClientRect();
        return [(ev.clientX - r.left) * MAP_CSS / r.width, (ev.clientY - r.top) * MAP_CSS / r.height];
      };
      m.canvas.addEventListener("pointermove", (ev) => {
        const [px, py] = pos(ev);
        decodeAt(i, m.view.toMap(px, py), "hover");
      });
      m.canvas.addEventListener("pointerleave", () => { state.marks[i].hover = null; redraw(i); });
      m.canvas.addEventListener("click", (ev) => mapClick(i, pos(ev)));
    });
  }

  function decodeAt(i, point, kind) {
    const m = state.maps[i];
    state.marks[i][kind] = point;
    if (kind === "pin") state.marks[i].hover = null;
    redraw(i);
    const t0 = performance.now();
    latest(`decode-${i}`, () => api("/api/decode", {run: i, point}), (r) => {
      const ms = performance.now() - t0;
      paint(m.decoded, r.image);
      m.reading.textContent = `reads as ${readingText(r.reading)}`;
      m.where.textContent = `(${point[0].toFixed(2)}, ${point[1].toFixed(2)})${kind === "pin" ? " pinned" : ""}`;
      const lat = state.latency[i];
      lat.push(ms); if (lat.length > 50) lat.shift();
      const med = [...lat].sort((p, q) => p - q)[Math.floor(lat.length / 2)];
      m.timing.textContent = `decode ${ms.toFixed(1)} ms (server ${r.server_ms.toFixed(1)} ms); median of last ${lat.length}: ${med.toFixed(1)} ms`;
    });
  }

  async function mapClick(i, pxy) {
    const mode = document.querySelector("input[name=click-mode]:checked").value;
    const m = state.maps[i];
    const point = m.view.toMap(pxy[0], pxy[1]);
    if (mode === "pin") { decodeAt(i, point, "pin"); return; }
    const near = nearest(i, pxy[0], pxy[1]);
    if (near.index >= 0 && near.dist <= SNAP_PX) {
      state.ends[mode] = {kind: "index", index: near.index};
      $(`interp-${mode}`).value = String(near.index);
    } else {
      const r = await api("/api/decode", {run: i, point}).catch(fail);
      if (!r) return;
      state.ends[mode] = {kind: "point", run: i, point, image: pixels(r.image)};
    }
    document.querySelector(`input[name=click-mode][value=${mode === "a" ? "b" : "pin"}]`).checked = true;
    if (mode === "b") interpolate();
    else describeEnds();
  }

  // ------------------------------------------------------------------------ interpolation
  function endFor(end, i) {
    if (end.kind === "index") return {index: end.index};
    return end.run === i ? {point: end.point} : {image: end.image};
  }

  function describeEnds() {
    const d = (e) => e.kind === "index" ? `test image #${e.index}` : `a point on ${state.info.runs[e.run].name}'s map`;
    $("interp-ends").textContent = `A = ${d(state.ends.a)}, B = ${d(state.ends.b)}`;
  }

  function chart(canvas, series) {
    const dpr = window.devicePixelRatio || 1, w = canvas.clientWidth || 460, h = canvas.clientHeight || 130;
    canvas.width = w * dpr; canvas.height = h * dpr;
    const ctx = canvas.getContext("2d");
    ctx.scale(dpr, dpr);
    const L = 34, R = 8, T = 8, B = 20;
    ctx.strokeStyle = "#bbb"; ctx.fillStyle = "#555"; ctx.font = "11px system-ui, sans-serif"; ctx.lineWidth = 1;
    for (const v of [0, 0.5, 1]) {
      const y = T + (1 - v) * (h - T - B);
      ctx.beginPath(); ctx.moveTo(L, y); ctx.lineTo(w - R, y); ctx.stroke();
      ctx.fillText(v.toFixed(1), 6, y + 4);
    }
    ctx.fillText("top-class confidence, A → B", L, h - 5);
    series.forEach(({values, color, name}, s) => {
      ctx.strokeStyle = color; ctx.lineWidth = 2; ctx.beginPath();
      values.forEach((v, k) => {
        const x = L + k * (w - L - R) / Math.max(values.length - 1, 1), y = T + (1 - v) * (h - T - B);
        if (k) ctx.lineTo(x, y); else ctx.moveTo(x, y);
      });
      ctx.stroke();
      ctx.fillStyle = color; ctx.fillText(`— ${name}`, w - R - 100 + 50 * s, h - 5);
    });
  }

  function interpolate() {
    describeEnds();
    const steps = Number($("interp-steps").value);
    const cols = columns("interp-runs", (col) => {
      const body = el("div", {class: "small-text", text: "…"});
      col.appendChild(body);
      return body;
    });
    state.info.runs.forEach((run, i) => {
      const body = {run: i, a: endFor(state.ends.a, i), b: endFor(state.ends.b, i), steps};
      api("/api/interpolate", body).then((r) => {
        const box = cols[i];
        box.textContent = "";
        box.className = "";
        for (const mode of ["lerp", "slerp"]) {
          const strip = el("div", {class: "strip"});
          r[mode].images.forEach((img, k) => strip.appendChild(cell(img, r[mode].readings[k])));
          const norms = r[mode].norms, mid = norms[Math.floor(norms.length / 2)];
          box.append(el("div", {class: "small-text",
                                text: `${mode}: ‖z‖ ${norms[0].toFixed(2)} → ${mid.toFixed(2)} (middle) → ${norms[norms.length - 1].toFixed(2)}; prior samples have ‖z‖ ≈ ${Math.sqrt(run.latent_dim).toFixed(2)}`}),
                     strip);
        }
        const canvas = el("canvas", {class: "chart"});
        box.appendChild(canvas);
        chart(canvas, [
          {name: "lerp", color: "#1f6feb", values: r.lerp.readings.map((x) => x.confidence)},
          {name: "slerp", color: "#e36209", values: r.slerp.readings.map((x) => x.confidence)},
        ]);
        const marks = state.marks[i];
        marks.a = r.lerp.points[0]; marks.b = r.lerp.points[r.lerp.points.length - 1];
        marks.path = r.lerp.points;
        redraw(i);
      }).catch(fail);
    });
  }

  // ------------------------------------------------------------------------ sliders
  function loadSliders() {
    const index = Number($("slider-index").value);
    const cols = columns("slider-runs", (col, run) => {
      const original = digitCanvas("big"), decoded = digitCanvas("big");
      const origCap = el("figcaption", {text: "test image"}), decCap = el("figcaption", {text: "decode of the slider code"});
      col.appendChild(el("div", {class: "pair"}, [el("figure", {}, [original, origCap]),
                                                 el("figure", {}, [decoded, decCap])]));
      col.appendChild(el("div", {class: "small-text", text: `dimensions ranked by ${run.dim_score}`}));
      const grid = el("div", {class: "sliders"});
      col.appendChild(grid);
      return {original, origCap, decoded, decCap, grid};
    });
    state.info.runs.forEach((run, i) => {
      api("/api/test-image", {run: i, index}).then((r) => {
        const c = cols[i];
        paint(c.original, r.image);
        c.origCap.textContent = `test image #${index}, label ${className(r.label)}; classifier: ${readingText(r.readings[0])}`;
        state.slider[i] = {base: r.code.slice(), code: r.code.slice()};
        run.dims.forEach((d) => {
          const input = el("input", {type: "range", min: String(d.lo), max: String(d.hi),
                                     step: String((d.hi - d.lo) / 200), value: String(r.code[d.index]),
                                     "aria-label": `latent dimension ${d.index}`, "data-dim": String(d.index)});
          const out = el("output", {text: r.code[d.index].toFixed(2)});
          input.addEventListener("input", () => {
            state.slider[i].code[d.index] = Number(input.value);
            out.textContent = Number(input.value).toFixed(2);
            decodeSlider(i);
          });
          c.grid.append(el("label", {text: `z[${d.index}] · ${d.score.toFixed(2)}`}), input, out);
        });
        decodeSlider(i);
      }).catch(fail);
    });
  }

  function decodeSlider(i) {
    const code = state.slider[i].code.slice();
    latest(`slider-${i}`, () => api("/api/decode", {run: i, code}), (r) => {
      const c = $("slider-runs").children[i];
      const canvas = c.querySelectorAll("canvas.digit")[1];
      paint(canvas, r.image);
      c.querySelectorAll("figcaption")[1].textContent = `decode: ${readingText(r.reading)}`;
      state.marks[i].slider = r.point;
      redraw(i);
    });
  }

  function resetSliders() {
    $("slider-runs").querySelectorAll(".run-col").forEach((col, i) => {
      if (!state.slider[i]) return;
      state.slider[i].code = state.slider[i].base.slice();
      col.querySelectorAll("input[type=range]").forEach((input) => {
        input.value = String(state.slider[i].base[Number(input.dataset.dim)]);
        input.nextSibling.textContent = Number(input.value).toFixed(2);
      });
      decodeSlider(i);
    });
  }

  // ------------------------------------------------------------------------ prior samples
  function sample() {
    const n = Number($("samples-n").value), seed = Number($("samples-seed").value);
    const cols = columns("samples-runs", (col) => {
      const grid = el("div", {class: "grid"});
      const note = el("div", {class: "small-text"});
      col.append(grid, note);
      return {grid, note};
    });
    state.info.runs.forEach((run, i) => {
      api("/api/samples", {run: i, n, seed}).then((r) => {
        r.images.forEach((img, k) => cols[i].grid.appendChild(cell(img, r.readings[k])));
        const counts = new Array(10).fill(0);
        r.readings.forEach((x) => { counts[x.label] += 1; });
        const sure = r.readings.filter((x) => x.confidence >= 0.9).length;
        cols[i].note.textContent = `${sure} of ${n} read with ≥ 90% confidence; classes ${counts.map((c, k) => c ? `${className(k)}×${c}` : "").filter(Boolean).join(" ")}`;
        state.samplePoints[i] = r.points;
        redraw(i);
      }).catch(fail);
    });
  }

  // ------------------------------------------------------------------------ drawing
  const drawing = {pixels: null, down: false, last: null};

  function clearDrawing() {
    const [, h, w] = state.info.image_shape;
    drawing.pixels = new Float32Array(h * w);
    paintDrawing();
  }

  function paintDrawing() {
    const canvas = $("draw-canvas"), [, h, w] = state.info.image_shape;
    canvas.width = w; canvas.height = h;
    const ctx = canvas.getContext("2d"), img = ctx.createImageData(w, h);
    drawing.pixels.forEach((v, k) => {
      const g = Math.round(255 * v);
      img.data[4 * k] = g; img.data[4 * k + 1] = g; img.data[4 * k + 2] = g; img.data[4 * k + 3] = 255;
    });
    ctx.putImageData(img, 0, 0);
  }

  function ink(x, y) {  // a soft round brush, like a pen stroke scanned at 28×28
    const [, h, w] = state.info.image_shape, r = Number($("draw-brush").value);
    for (let py = Math.floor(y - 2 * r); py <= Math.ceil(y + 2 * r); py++) {
      for (let px = Math.floor(x - 2 * r); px <= Math.ceil(x + 2 * r); px++) {
        if (px < 0 || py < 0 || px >= w || py >= h) continue;
        const d2 = (px + 0.5 - x) ** 2 + (py + 0.5 - y) ** 2;
        const v = Math.min(1, 1.6 * Math.exp(-d2 / (2 * r * r)));
        drawing.pixels[py * w + px] = Math.max(drawing.pixels[py * w + px], v < 0.05 ? 0 : v);
      }
    }
  }

  function drawPos(ev) {
    const canvas = $("draw-canvas"), r = canvas.getBoundingClientRect(), [, h, w] = state.info.image_shape;
    return [(ev.clientX - r.left) * w / r.width, (ev.clientY - r.top) * h / r.height];
  }

  function strokeTo(p) {
    const from = drawing.last || p, dist = Math.hypot(p[0] - from[0], p[1] - from[1]);
    const n = Math.max(1, Math.ceil(dist / 0.25));
    for (let k = 1; k <= n; k++) ink(from[0] + (p[0] - from[0]) * k / n, from[1] + (p[1] - from[1]) * k / n);
    drawing.last = p;
    paintDrawing();
  }

  function buildDrawing() {
    const canvas = $("draw-canvas");
    clearDrawing();
    canvas.addEventListener("pointerdown", (ev) => {
      drawing.down = true; drawing.last = null;
      if (canvas.setPointerCapture && ev.pointerId !== undefined) {
        try { canvas.setPointerCapture(ev.pointerId); } catch (e) { /* synthetic pointers */ }
      }
      strokeTo(drawPos(ev));
    });
    canvas.addEventListener("pointermove", (ev) => { if (drawing.down) strokeTo(drawPos(ev)); });
    const end = () => { if (drawing.down) { drawing.down = false; drawing.last = null; encodeDrawing(); } };
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
    $("draw-clear").addEventListener("click", () => {
      clearDrawing();
      state.marks.forEach((m, i) => { m.drawing = null; redraw(i); });
      $("draw-runs").textContent = "";
    });
    $("draw-center").addEventListener("change", encodeDrawing);
  }

  function encodeDrawing() {
    if (!drawing.pixels.some((v) => v > 0)) return;
    const image = Array.from(drawing.pixels, (v) => Math.round(v * 1000) / 1000);
    const center = $("draw-center").checked;
    const cols = columns("draw-runs", (col) => {
      const seen = digitCanvas("big", "big seen"), recon = digitCanvas("big", "big recon");
      const seenCap = el("figcaption", {text: "model input"}), reconCap = el("figcaption", {text: "reconstruction"});
      const where = el("div", {class: "small-text"});
      col.append(el("div", {class: "pair"}, [el("figure", {}, [seen, seenCap]), el("figure", {}, [recon, reconCap])]), where);
      return {seen, recon, seenCap, reconCap, where};
    });
    state.info.runs.forEach((run, i) => {
      latest(`encode-${i}`, () => api("/api/encode", {run: i, image, center}), (r) => {
        const c = cols[i];
        paint(c.seen, r.input);
        paint(c.recon, r.reconstruction);
        c.seenCap.textContent = `drawing reads as ${readingText(r.input_reading)}`;
        c.reconCap.textContent = `reconstruction reads as ${readingText(r.reconstruction_reading)}`;
        c.where.textContent = `lands at (${r.point[0].toFixed(2)}, ${r.point[1].toFixed(2)}) on the map (★)`;
        state.marks[i].drawing = r.point;
        redraw(i);
      });
    });
  }

  // ------------------------------------------------------------------------ start
  function wire() {
    $("interp-steps").addEventListener("input", () => { $("interp-steps-out").textContent = $("interp-steps").value; });
    const setIndexEnd = (which) => {
      const v = Math.max(0, Math.min(state.info.test_images - 1, Number($(`interp-${which}`).value) || 0));
      $(`interp-${which}`).value = String(v);
      state.ends[which] = {kind: "index", index: v};
    };
    $("interp-a").addEventListener("change", () => { setIndexEnd("a"); interpolate(); });
    $("interp-b").addEventListener("change", () => { setIndexEnd("b"); interpolate(); });
    $("interp-go").addEventListener("click", interpolate);
    $("interp-random").addEventListener("click", () => {
      const n = state.info.test_images;
      $("interp-a").value = String(Math.floor(Math.random() * n));
      $("interp-b").value = String(Math.floor(Math.random() * n));
      setIndexEnd("a"); setIndexEnd("b"); interpolate();
    });
    $("slider-index").addEventListener("change", () => {
      $("slider-index").value = String(Math.max(0, Math.min(state.info.test_images - 1, Number($("slider-index").value) || 0)));
      loadSliders();
    });
    $("slider-random").addEventListener("click", () => {
      $("slider-index").value = String(Math.floor(Math.random() * state.info.test_images));
      loadSliders();
    });
    $("slider-reset").addEventListener("click", resetSliders);
    $("samples-go").addEventListener("click", sample);
    $("samples-new").addEventListener("click", () => {
      $("samples-seed").value = String(Math.floor(Math.random() * 100000));
      sample();
    });
    $("show-samples").addEventListener("change", () => state.maps.forEach((_, i) => redraw(i)));
    $("samples-n").addEventListener("change", () => {
      $("samples-n").value = String(Math.max(1, Math.min(64, Number($("samples-n").value) || 16)));
    });
  }

  async function start() {
    try {
      state.info = await api("/api/runs");
      const info = state.info, c = info.classifier;
      $("summary").textContent = `${info.runs.length} run(s) on ${info.dataset}: ` +
        info.runs.map((r) => `${r.name} (${r.kind})`).join(", ") +
        ` · ${info.test_images} test images on the maps · ${c.variant} classifier` +
        (c.test_accuracy != null ? `, test accuracy ${(100 * c.test_accuracy).toFixed(1)}%` : "");
      const maps = await Promise.all(info.runs.map((_, i) => api(`/api/map?run=${i}`)));
      state.maps = maps;
      state.marks = info.runs.map(() => ({}));
      state.latency = info.runs.map(() => []);
      $("interp-a").max = $("interp-b").max = $("slider-index").max = String(info.test_images - 1);
      buildMaps();
      buildDrawing();
      wire();
      document.body.dataset.readyMs = performance.now().toFixed(1);
      document.body.dataset.ready = "1";
      describeEnds();
      interpolate();
      loadSliders();
      sample();
    } catch (e) {
      fail(e);
    }
  }

  document.addEventListener("DOMContentLoaded", start);
})();
