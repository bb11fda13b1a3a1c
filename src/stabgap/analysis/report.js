// report.html's interactive accuracy curves (see stabgap/analysis/html.py).
(function () {
  const data = JSON.parse(document.getElementById("curve-data").textContent);
  const box = document.getElementById("curves");
  if (!box || !data.groups.length) return;
  // groups may train tasks of other lengths: the axis runs to the longest run's end, and
  // each group's switches are drawn (the k-th switch of every group is one zoom)
  const xmax = Math.max(...data.groups.map(g => g.x[g.x.length - 1] + 1));
  const switches = [...new Set(data.groups.flatMap(g => g.switches))].sort((a, b) => a - b);
  const nSwitches = Math.max(...data.groups.map(g => g.switches.length));
  const state = { task: 0, hidden: new Set(), lo: 0, hi: xmax };
  box.innerHTML = "<p><strong>Accuracy curves</strong> (mean ± std over seeds; toggle " +
    "groups, choose a task, zoom on a switch or drag across the plot, double-click to " +
    "reset)</p><div id='controls'></div><div id='legend'></div><canvas></canvas>";
  const canvas = box.querySelector("canvas"), tip = document.getElementById("tip");
  const controls = box.querySelector("#controls"), legend = box.querySelector("#legend");
  let html = "task: <select id='task'>";
  for (let t = 0; t < data.tasks; t++) html += `<option value='${t}'>${t + 1}</option>`;
  html += "</select> <button data-zoom='0'>whole run</button>";
  for (let i = 0; i < nSwitches; i++) html += ` <button data-zoom='${i + 2}'>switch to task ${i + 2}</button>`;
  controls.innerHTML = html;
  data.groups.forEach((g, i) => {
    const label = document.createElement("label");
    label.innerHTML = `<input type='checkbox' checked data-group='${i}'> ` +
      `<span style='color:${g.color}'>&#9632;</span> ` +
      g.label.replace(/&/g, "&amp;").replace(/</g, "&lt;") + ` (${g.seeds})`;
    legend.appendChild(label);
  });
  function zoom(k) {
    // the whole run for 0, or for a task without a switch to it (an address's bad value)
    if (!(k >= 2 && k - 2 < nSwitches)) { state.lo = 0; state.hi = xmax; return; }
    // from just before the earliest group's switch to a third of a task past the latest's
    const at = data.groups.filter(g => k - 2 < g.switches.length);
    const lo = Math.min(...at.map(g => g.switches[k - 2] - 0.05 * g.switches[0]));
    const hi = Math.max(...at.map(g => g.switches[k - 2] + 0.3 * g.switches[0]));
    state.lo = Math.max(0, lo); state.hi = Math.min(xmax, hi);
  }
  // Axis labels at round values: the multiples of 1, 2 or 5 × a power of ten that give
  // at most seven between lo and hi, with as many decimals as that step needs.
  function ticks(lo, hi) {
    const rough = (hi - lo) / 6 || 1, power = Math.pow(10, Math.floor(Math.log10(rough)));
    const step = [1, 2, 5, 10].map(m => m * power).find(s => s >= rough);
    const digits = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
    const values = [];
    for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + 1e-9 * step; k++) {
      values.push(+(k * step).toFixed(digits));
    }
    return { values, digits };
  }
  function draw() {
    const ctx = canvas.getContext("2d"), w = canvas.width = canvas.clientWidth;
    const h = canvas.height = canvas.clientHeight, pad = 40;
    ctx.clearRect(0, 0, w, h);
    let ymin = 100, ymax = 0, drawn = 0;
    data.groups.forEach((g, i) => {
      if (state.hidden.has(i)) return;
      g.x.forEach((x, p) => {
        const v = g.mean[state.task][p];
        if (v === null || x < state.lo || x > state.hi) return;
        ymin = Math.min(ymin, v - g.std[state.task][p]); ymax = Math.max(ymax, v + g.std[state.task][p]);
      });
    });
    if (ymin > ymax) { ymin = 0; ymax = 100; }
    ymin = Math.max(0, Math.floor(ymin - 1)); ymax = Math.min(100, Math.ceil(ymax + 1));
    const X = x => pad + (x - state.lo) / (state.hi - state.lo) * (w - 2 * pad);
    const Y = y => h - pad - (y - ymin) / (ymax - ymin || 1) * (h - 2 * pad);
    ctx.strokeStyle = "#888"; ctx.fillStyle = "#333"; ctx.font = "11px sans-serif";
    ctx.strokeRect(pad, pad, w - 2 * pad, h - 2 * pad);
    const yTicks = ticks(ymin, ymax), xTicks = ticks(state.lo, state.hi);
    ctx.textAlign = "right";
    yTicks.values.forEach(y => {
      ctx.fillText(y.toFixed(yTicks.digits), pad - 4, Y(y) + 4);
      ctx.strokeStyle = "#eee"; ctx.beginPath();
      ctx.moveTo(pad, Y(y)); ctx.lineTo(w - pad, Y(y)); ctx.stroke();
    });
    ctx.strokeStyle = "#888"; ctx.textAlign = "center";
    xTicks.values.forEach(x => ctx.fillText(x.toFixed(xTicks.digits), X(x), h - pad + 14));
    ctx.textAlign = "left";
    ctx.fillText("training batch", w / 2 - 30, h - 6);
    ctx.fillText(`task ${state.task + 1} accuracy (%)`, pad, pad - 8);
    ctx.setLineDash([4, 4]);
    switches.forEach(s => { if (s >= state.lo && s <= state.hi) {
      ctx.beginPath(); ctx.moveTo(X(s), pad); ctx.lineTo(X(s), h - pad); ctx.stroke(); } });
    ctx.setLineDash([]);
    ctx.save(); ctx.beginPath(); ctx.rect(pad, pad, w - 2 * pad, h - 2 * pad); ctx.clip();
    // the baseline last: above the groups compared with it, as in the figures
    const order = data.groups.map((g, i) => i).sort((a, b) =>
      data.groups[a].baseline - data.groups[b].baseline || a - b);
    order.forEach(i => {
      const g = data.groups[i];
      if (state.hidden.has(i)) return;
      const c = g.color, m = g.mean[state.task], sd = g.std[state.task];
      ctx.globalAlpha = 0.15; ctx.fillStyle = c; ctx.beginPath();
      let on = [];
      g.x.forEach((x, p) => { if (m[p] !== null) on.push(p); });
      on.forEach((p, k) => { const f = k ? ctx.lineTo : ctx.moveTo; f.call(ctx, X(g.x[p]), Y(m[p] + sd[p])); });
      on.slice().reverse().forEach(p => ctx.lineTo(X(g.x[p]), Y(m[p] - sd[p])));
      ctx.fill(); ctx.globalAlpha = 1; ctx.strokeStyle = c; ctx.lineWidth = 1.5; ctx.beginPath();
      on.forEach((p, k) => { const f = k ? ctx.lineTo : ctx.moveTo; f.call(ctx, X(g.x[p]), Y(m[p])); });
      ctx.stroke();
      if (on.length) drawn += 1;
    });
    ctx.restore();
    document.body.dataset.curvesDrawn = drawn;
    document.body.dataset.task = state.task + 1;
    document.body.dataset.xRange = `${Math.round(state.lo)},${Math.round(state.hi)}`;
    document.body.dataset.yTicks = yTicks.values.join(",");
    canvas.dataset.scale = JSON.stringify([pad, w, state.lo, state.hi]);
  }
  // The view an address names, whole: what it leaves out is the default (task 1, every
  // group shown, the whole run); a value that names nothing (task=abc) is left out too.
  function fromHash() {
    const q = new URLSearchParams(location.hash.slice(1));
    const task = Math.round(+q.get("task"));
    state.task = Number.isFinite(task) && task >= 1 ? Math.min(data.tasks, task) - 1 : 0;
    state.hidden.clear();
    (q.get("hide") || "").split("|").forEach(name => {
      data.groups.forEach((g, i) => { if (g.label === name || g.key === name) state.hidden.add(i); });
    });
    zoom(+q.get("zoom"));
    box.querySelector("#task").value = state.task;
    legend.querySelectorAll("input").forEach(c => { c.checked = !state.hidden.has(+c.dataset.group); });
  }
  controls.addEventListener("change", e => { state.task = +e.target.value; draw(); });
  controls.addEventListener("click", e => { if (e.target.dataset.zoom !== undefined) { zoom(+e.target.dataset.zoom); draw(); } });
  legend.addEventListener("change", e => {
    const i = +e.target.dataset.group;
    if (e.target.checked) state.hidden.delete(i); else state.hidden.add(i);
    draw();
  });
  const xAt = e => { const [pad, w, lo, hi] = JSON.parse(canvas.dataset.scale);
    const r = canvas.getBoundingClientRect();
    return lo + (e.clientX - r.left - pad) / (r.width - 2 * pad) * (hi - lo); };
  let dragFrom = null;
  canvas.addEventListener("mousedown", e => { dragFrom = xAt(e); });
  canvas.addEventListener("mouseup", e => {
    const to = xAt(e);
    if (dragFrom !== null && Math.abs(to - dragFrom) > 2) {
      state.lo = Math.max(0, Math.min(dragFrom, to)); state.hi = Math.min(xmax, Math.max(dragFrom, to)); draw();
    }
    dragFrom = null;
  });
  canvas.addEventListener("dblclick", () => { zoom(0); draw(); });
  canvas.addEventListener("mousemove", e => {
    const x = xAt(e);
    let lines = [`batch ${Math.round(x)}`];
    data.groups.forEach((g, i) => {
      if (state.hidden.has(i)) return;
      let best = 0;
      g.x.forEach((v, p) => { if (Math.abs(v - x) < Math.abs(g.x[best] - x)) best = p; });
      const v = g.mean[state.task][best];
      if (v !== null) lines.push(`${g.label}: ${v.toFixed(2)} %`);
    });
    tip.innerHTML = lines.map(l => l.replace(/</g, "&lt;")).join("<br>");
    tip.style.left = (e.clientX + 12) + "px"; tip.style.top = (e.clientY + 12) + "px";
    tip.style.display = "block";
  });
  canvas.addEventListener("mouseleave", () => { tip.style.display = "none"; });
  window.addEventListener("hashchange", () => { fromHash(); draw(); });
  window.addEventListener("resize", draw);
  fromHash();
  draw();
})();
