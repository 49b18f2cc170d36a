"use strict";
// Line charts drawn on <canvas>: time on x, one line per series, a few grid lines on y.
// No library: the page must work without any network beyond the server itself.

const CHART_SPAN_MS = 10 * 60 * 1000;

/** A series of (time in ms, value) points, bounded to the chart's span. */
class Series {
  constructor(label, color) {
    this.label = label;
    this.color = color;
    this.points = [];
  }
  push(t, v) {
    if (!Number.isFinite(v)) return;
    const last = this.points[this.points.length - 1];
    if (last && t <= last.t) return; // keep the series ordered
    this.points.push({ t, v });
    const oldest = t - CHART_SPAN_MS;
    while (this.points.length && this.points[0].t < oldest) this.points.shift();
  }
}

/** Rounds a maximum up to 1, 2 or 5 times a power of ten, so grid labels read well. */
function niceCeiling(value) {
  if (value <= 0) return 1;
  const power = Math.pow(10, Math.floor(Math.log10(value)));
  for (const step of [1, 2, 5, 10]) {
    if (value <= step * power) return step * power;
  }
  return 10 * power;
}

function drawChart(canvas, seriesList, formatValue, now) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);

  const left = 62, right = 10, top = 8, bottom = 22;
  const plotWidth = width - left - right;
  const plotHeight = height - top - bottom;
  const start = now - CHART_SPAN_MS;
  let max = 0;
  for (const series of seriesList) {
    for (const point of series.points) max = Math.max(max, point.v);
  }
  max = niceCeiling(max * 1.1);
  const x = (t) => left + ((t - start) / CHART_SPAN_MS) * plotWidth;
  const y = (v) => top + plotHeight - (v / max) * plotHeight;

  ctx.font = "11px ui-sans-serif, system-ui, sans-serif";
  ctx.strokeStyle = "#232a36";
  ctx.fillStyle = "#8b93a3";
  ctx.lineWidth = 1;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  const gridLines = 4;
  for (let i = 0; i <= gridLines; i++) {
    const value = (max * i) / gridLines;
    const gy = Math.round(y(value)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(left, gy);
    ctx.lineTo(width - right, gy);
    ctx.stroke();
    ctx.fillText(formatValue(value), left - 6, gy);
  }
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (let minutesAgo = 10; minutesAgo >= 0; minutesAgo -= 2) {
    const t = now - minutesAgo * 60000;
    ctx.fillText(minutesAgo === 0 ? "now" : `-${minutesAgo}m`, x(t), height - bottom + 6);
  }

  for (const series of seriesList) {
    const points = series.points.filter((p) => p.t >= start);
    if (points.length === 0) continue;
    ctx.strokeStyle = series.color;
    ctx.lineWidth = 2;
    ctx.lineJoin = "round";
    ctx.beginPath();
    points.forEach((p, i) => (i === 0 ? ctx.moveTo(x(p.t), y(p.v)) : ctx.lineTo(x(p.t), y(p.v))));
    ctx.stroke();
    // A soft fill under the line makes the shape readable at a glance.
    const gradient = ctx.createLinearGradient(0, top, 0, top + plotHeight);
    gradient.addColorStop(0, series.color + "33");
    gradient.addColorStop(1, series.color + "00");
    ctx.lineTo(x(points[points.length - 1].t), y(0));
    ctx.lineTo(x(points[0].t), y(0));
    ctx.closePath();
    ctx.fillStyle = gradient;
    ctx.fill();
  }
}

function drawLegend(element, seriesList) {
  element.innerHTML = "";
  for (const series of seriesList) {
    const item = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = series.color;
    item.appendChild(swatch);
    item.appendChild(document.createTextNode(series.label));
    element.appendChild(item);
  }
}
