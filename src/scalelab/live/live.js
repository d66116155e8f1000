// scalelab live page: polls /api/live and draws the panels on canvases (no library, no
// request anywhere but this server). Figures carry data-value and data-time for tests.
"use strict";

const COLOURS = ["#2f6fdf", "#e07b00", "#1f9d55", "#c23b6f", "#7a4fd0", "#0c9aa8", "#8a6d3b"];
const PHASE_FILL = {
  setup: "rgba(120,120,120,0.10)", deploy: "rgba(120,120,120,0.16)",
  warmup: "rgba(255,196,0,0.16)", load: "rgba(47,111,223,0.07)",
  cooldown: "rgba(31,157,85,0.12)", teardown: "rgba(120,120,120,0.10)",
};
const FIGURES = [
  ["rate", "target", "target"], ["rate", "sent", "sent"], ["rate", "completed", "completed"],
  ["latency", "p50", "p50"], ["latency", "p95", "p95"], ["latency", "p99", "p99"],
  ["lag", "lag", "lag"], ["lag", "errors", "errors"], ["energy", "power", "power"],
];
let updates = 0;
let last = null;

function fmt(value, unit) {
  if (value === null || value === undefined) return "–";
  if (unit === "s") return value < 1 ? (value * 1000).toFixed(0) + " ms" : value.toFixed(2) + " s";
  if (unit === "msg") return Math.round(value).toString();
  if (Math.abs(value) >= 100) return value.toFixed(0);
  return value.toFixed(value >= 10 ? 1 : 2);
}

function tick(value, unit, ymax) {
  // axis labels: as many decimals as the scale needs (a lag axis up to 2 reads 0.5, 1.0, ...)
  if (unit === "s") return fmt(value, unit);
  return value.toFixed(ymax >= 100 ? 0 : ymax >= 10 ? 1 : 2);
}

function lineOf(panel, key) {
  return panel ? panel.lines.find((l) => l.key === key) : undefined;
}

function renderFigures(data) {
  const box = document.getElementById("figures");
  box.textContent = "";
  const panels = Object.fromEntries((data.panels || []).map((p) => [p.key, p]));
  for (const [panelKey, key, name] of FIGURES) {
    const panel = panels[panelKey];
    const line = lineOf(panel, key);
    const unit = panel ? panel.unit : "";
    const div = document.createElement("div");
    div.className = "figure";
    div.id = `figure-${key}`;
    div.dataset.time = String(data.now);
    div.dataset.value = line && line.current !== null ? String(line.current) : "";
    const label = key === "power" && data.energy_source ? `power, ${data.energy_source}` : name;
    const shown = fmt(line ? line.current : null, unit);
    const unitText = unit === "s" ? "" : unit;
    div.innerHTML = `<div class="name"></div><span class="value"></span><span class="unit"></span>`;
    div.querySelector(".name").textContent = label;
    if (key === "power" && data.energy_source && data.energy_source.startsWith("estimate")) {
      div.querySelector(".name").className = "name estimate";
    }
    div.querySelector(".value").textContent = shown;
    div.querySelector(".unit").textContent = shown === "–" ? "" : unitText;
    box.appendChild(div);
  }
}

function renderHeader(data) {
  const run = data.run;
  document.getElementById("run").textContent = run ? `run ${run.id}` : "waiting for the run…";
  document.getElementById("status").textContent = run ? run.status : "";
  const phases = (data.bands || []).filter((b) => b.kind === "phase");
  const open = phases.filter((b) => b.end === null).pop() || phases[phases.length - 1];
  document.getElementById("phase").textContent = open ? `phase: ${open.label}` : "";
  const prom = document.getElementById("prometheus");
  prom.textContent = data.prometheus || "–";
  prom.href = data.prometheus || "#";
  document.getElementById("message").textContent = data.message || "";
  const faults = (data.bands || []).filter((b) => b.kind === "fault");
  document.getElementById("bands").textContent = faults.length
    ? "injected faults: " + faults.map((f) => `${f.label} at ${clock(f.start)}`).join(", ")
    : "";
}

function clock(epoch) {
  return new Date(epoch * 1000).toISOString().substring(11, 19) + "Z";
}

function chartBox(panel) {
  let box = document.getElementById(`chart-${panel.key}`);
  if (!box) {
    box = document.createElement("div");
    box.className = "chart";
    box.id = `chart-${panel.key}`;
    box.innerHTML = "<h2></h2><canvas></canvas><div class='legend'></div>";
    document.getElementById("charts").appendChild(box);
  }
  return box;
}

function renderChart(panel, data) {
  const box = chartBox(panel);
  box.querySelector("h2").textContent = `${panel.title} (${panel.unit})`;
  const canvas = box.querySelector("canvas");
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 560;
  const height = canvas.clientHeight || 220;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  const pad = { left: 52, right: 10, top: 8, bottom: 22 };
  const x0 = data.start || data.now - 60;
  const x1 = data.now;
  let ymax = 0;
  for (const line of panel.lines) {
    for (const [, v] of line.points) if (v !== null && v > ymax) ymax = v;
  }
  ymax = ymax > 0 ? ymax * 1.1 : 1;
  const sx = (t) => pad.left + ((t - x0) / Math.max(1e-9, x1 - x0)) * (width - pad.left - pad.right);
  const sy = (v) => height - pad.bottom - (v / ymax) * (height - pad.top - pad.bottom);
  ctx.clearRect(0, 0, width, height);
  drawBands(ctx, data.bands || [], sx, x0, x1, pad, height);
  drawAxes(ctx, panel.unit, ymax, x0, x1, sx, sy, pad, width, height);
  panel.lines.forEach((line, n) => drawLine(ctx, line.points, COLOURS[n % COLOURS.length], sx, sy));
  const legend = box.querySelector(".legend");
  legend.textContent = "";
  panel.lines.forEach((line, n) => {
    const item = document.createElement("span");
    item.innerHTML = `<i style="background:${COLOURS[n % COLOURS.length]}"></i>`;
    item.append(`${line.label} ${fmt(line.current, panel.unit)}`);
    legend.appendChild(item);
  });
}

function drawBands(ctx, bands, sx, x0, x1, pad, height) {
  ctx.font = "11px system-ui, sans-serif";
  let row = 0;
  for (const band of bands) {
    const start = Math.max(band.start, x0);
    const end = Math.min(band.end === null ? x1 : band.end, x1);
    if (end < start && band.kind !== "fault") continue;
    const left = sx(start);
    const w = Math.max(band.kind === "fault" ? 3 : 0, sx(end) - left);
    ctx.fillStyle = band.kind === "fault" ? "rgba(220,40,40,0.25)" : PHASE_FILL[band.label] || "rgba(0,0,0,0.05)";
    ctx.fillRect(left, pad.top, w, height - pad.top - pad.bottom);
    ctx.fillStyle = band.kind === "fault" ? "#b00020" : "#5b6577";
    if (band.kind !== "fault") row = 1 - row; // neighbouring phase labels on two rows
    ctx.fillText(band.label, left + 2, pad.top + 10 + 12 * (band.kind === "fault" ? 2 : 1 - row));
  }
}

function drawAxes(ctx, unit, ymax, x0, x1, sx, sy, pad, width, height) {
  ctx.strokeStyle = "#c9cfd9";
  ctx.fillStyle = "#5b6577";
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.moveTo(pad.left, pad.top);
  ctx.lineTo(pad.left, height - pad.bottom);
  ctx.lineTo(width - pad.right, height - pad.bottom);
  ctx.stroke();
  for (let i = 0; i <= 4; i++) {
    const v = (ymax / 4) * i;
    ctx.fillText(tick(v, unit, ymax), 4, sy(v) + 4);
  }
  for (let i = 0; i <= 4; i++) {
    const t = x0 + ((x1 - x0) / 4) * i;
    ctx.fillText(clock(t), Math.min(sx(t) - 24, width - 64), height - 6);
  }
}

function drawLine(ctx, points, colour, sx, sy) {
  ctx.strokeStyle = colour;
  ctx.lineWidth = 1.8;
  ctx.beginPath();
  let pen = false;
  for (const [t, v] of points) {
    if (v === null) { pen = false; continue; }
    if (pen) ctx.lineTo(sx(t), sy(v)); else ctx.moveTo(sx(t), sy(v));
    pen = true;
  }
  ctx.stroke();
}

function render(data) {
  renderHeader(data);
  if (!data.panels || data.panels.length === 0) return;
  renderFigures(data);
  for (const panel of data.panels) renderChart(panel, data);
  updates += 1;
  document.body.dataset.updates = String(updates);
  document.body.dataset.now = String(data.now);
  document.body.dataset.run = data.run ? data.run.id : "";
}

async function poll() {
  let delay = 1000;
  try {
    const response = await fetch("/api/live", { cache: "no-store" });
    const data = await response.json();
    delay = Math.max(1, data.scrape_interval_s || 1) * 1000;
    const answered = data.panels && data.panels.some((p) => p.lines.length > 0);
    if (answered || !last) { last = data; render(data); } else { renderHeader(data); }
  } catch (error) {
    document.getElementById("message").textContent = "dashboard server gone (the run has ended)";
    delay = 5000;
  }
  setTimeout(poll, delay);
}

poll();
