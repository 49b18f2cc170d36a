// The dashboard: polls the current snapshot (/api/v1/metrics/current) once a second, fills
// the cards from it, and keeps the charts' last 10 minutes. On load the charts are seeded from
// the history export so they are not empty.
//
// Why polling and not the event stream (/api/v1/monitor/events, still served for other
// clients): an open stream is a request that never finishes, so a headless browser's virtual
// time (`chromium --headless --screenshot --virtual-time-budget=...`) never ran out and the
// page could not be captured. A poll is one short request a second, and a failed one tells at
// once that the server is gone: the numbers are dimmed and a banner says since when.
//
// A server in `--auth token` mode wants a token: open the page as `/#token=TOKEN`. The token
// stays in the URL fragment (never sent to the server with the page), then moves to session
// storage and off the address bar; it is sent as a header with every request.
const token = (() => {
  const match = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
  if (match) {
    sessionStorage.setItem("switchboard-token", decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem("switchboard-token");
})();
const authHeaders = token ? { Authorization: `Bearer ${token}` } : {};

const $ = (id) => document.getElementById(id);

const throughput = [
  new Series("sent", "#5aa9ff"),
  new Series("delivered", "#b18cff"),
  new Series("acked", "#3ecf8e"),
];
const latency = [
  new Series("p50", "#3ecf8e"),
  new Series("p95", "#f5b942"),
  new Series("p99", "#ff5d6c"),
];
/** Time between two polls of the snapshot, in milliseconds. */
const POLL_INTERVAL_MS = 1000;
/** A poll not answered within this many milliseconds counts as failed. */
const POLL_TIMEOUT_MS = 5000;
/** When polls started failing (ms since the epoch); null while the server answers. */
let unreachableSince = null;
/** The page shows numbers from the server (it answered at least once). */
let rendered = false;
/** Active alerts of the previous snapshot, by id (null before the first one). */
let knownAlerts = null;

function count(n) {
  return Number(n || 0).toLocaleString("en-US");
}

function rate(n) {
  if (!n) return "0";
  return n >= 100 ? Math.round(n).toLocaleString("en-US") : n.toFixed(n >= 10 ? 1 : 2);
}

/** A duration with three significant digits at most, so it fits a card. */
function seconds(s, hasData = true) {
  if (!hasData) return "–";
  const compact = (n) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
  if (s < 0.001) return `${Math.round(s * 1e6)} µs`;
  if (s < 1) return `${compact(s * 1000)} ms`;
  if (s < 120) return `${compact(s)} s`;
  return `${compact(s / 60)} min`;
}

function percent(fraction) {
  return `${(fraction * 100).toFixed(fraction > 0 && fraction < 0.1 ? 2 : 1)} %`;
}

function bytes(n) {
  if (!n) return "–";
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function duration(totalSeconds) {
  const d = Math.floor(totalSeconds / 86400);
  const h = Math.floor((totalSeconds % 86400) / 3600);
  const m = Math.floor((totalSeconds % 3600) / 60);
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  return `${m}m ${totalSeconds % 60}s`;
}

function ago(iso) {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  return `${Math.floor(s / 3600)}h ago`;
}

function time(iso) {
  return new Date(iso).toLocaleTimeString();
}

function text(id, value) {
  const element = $(id);
  if (element.textContent !== String(value)) element.textContent = value;
}

function element(tag, className, content) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (content !== undefined) node.textContent = content;
  return node;
}

const STATUS_COLORS = { healthy: "#3ecf8e", degraded: "#f5b942", unhealthy: "#ff5d6c" };

function renderHealth(health) {
  // One decimal unless whole, so 89.7 never reads as a "degraded 90".
  text("health-score", Number.isInteger(health.score) ? health.score : health.score.toFixed(1));
  text("health-status", health.status);
  $("health-status").className = `status-text ${health.status}`;
  $("health-score").className = `big ${health.status}`;
  const ring = $("health-ring");
  const circumference = 2 * Math.PI * 50;
  ring.style.strokeDashoffset = String(circumference * (1 - health.score / 100));
  ring.style.stroke = STATUS_COLORS[health.status];
  const list = $("health-components");
  list.innerHTML = "";
  for (const [name, component] of Object.entries(health.components)) {
    const row = element("div", "component");
    row.appendChild(element("span", "name", name));
    const bar = element("div", "bar");
    const fill = element("div");
    const fraction = component.score / component.max;
    fill.style.width = `${fraction * 100}%`;
    fill.style.background = fraction >= 0.9 ? "#3ecf8e" : fraction >= 0.6 ? "#f5b942" : "#ff5d6c";
    bar.appendChild(fill);
    row.appendChild(bar);
    row.appendChild(element("span", "value", `${component.score}/${component.max}`));
    list.appendChild(row);
  }
  const issues = $("health-issues");
  issues.innerHTML = "";
  for (const issue of health.issues) issues.appendChild(element("li", "", issue));
}

function renderAgents(agents) {
  text("agents-summary", `${agents.available} of ${agents.total} available`);
  text("agents-available", agents.total ? percent(agents.availability) : "–");
  const bar = $("availability-bar");
  bar.style.width = agents.total ? `${agents.availability * 100}%` : "0";
  bar.style.background = agents.availability >= 0.8 ? "#3ecf8e" : "#f5b942";
  const body = $("agents-table");
  body.innerHTML = "";
  if (agents.list.length === 0) {
    const row = element("tr");
    const cell = element("td", "empty", "no agents yet");
    cell.colSpan = 6;
    row.appendChild(cell);
    body.appendChild(row);
    return;
  }
  for (const agent of agents.list) {
    const row = element("tr");
    row.dataset.agent = agent.name;
    row.appendChild(element("td", "", agent.name));
    const presence = element("td");
    presence.appendChild(element("span", `dot ${agent.status}`));
    presence.appendChild(document.createTextNode(agent.connected ? `${agent.status} · ws` : agent.status));
    row.appendChild(presence);
    row.appendChild(element("td", "num", count(agent.waiting)));
    row.appendChild(element("td", "num", count(agent.leased)));
    row.appendChild(element("td", agent.dead ? "num dead-count" : "num", count(agent.dead)));
    row.appendChild(element("td", "", ago(agent.last_seen)));
    body.appendChild(row);
  }
  if (agents.total > agents.list.length) {
    const row = element("tr");
    const cell = element("td", "empty", `and ${agents.total - agents.list.length} more`);
    cell.colSpan = 6;
    row.appendChild(cell);
    body.appendChild(row);
  }
}

function renderQueues(queues) {
  const depths = $("queue-depths");
  depths.innerHTML = "";
  for (const [label, value] of [["ready", queues.ready], ["delayed", queues.delayed], ["leased", queues.leased], ["dead", queues.dead]]) {
    const cell = element("div");
    cell.appendChild(element("div", "big", count(value)));
    cell.appendChild(element("div", "label", label));
    depths.appendChild(cell);
  }
  text("dead-letters", count(queues.dead));
  $("dead-letters").className = queues.dead ? "" : "none";
  text("queue-count", count(queues.count));
  const list = $("other-queues");
  list.innerHTML = "";
  for (const queue of queues.other) {
    const item = element("li");
    item.appendChild(element("span", "", queue.name));
    item.appendChild(element("span", "", `${count(queue.waiting)} waiting · ${count(queue.leased)} leased · ${count(queue.dead)} dead`));
    list.appendChild(item);
  }
}

function alertItem(alert, resolved) {
  const item = element("li", alert.severity);
  item.appendChild(element("span", `badge ${alert.severity}`, alert.severity));
  item.appendChild(document.createTextNode(alert.message));
  const when = resolved
    ? `${time(alert.started_at)} → ${time(alert.resolved_at)}`
    : `since ${time(alert.started_at)} (${ago(alert.started_at)})`;
  item.appendChild(element("span", "when", when));
  return item;
}

function renderAlerts(alerts) {
  for (const [id, list, resolved, empty] of [
    ["alerts-active", alerts.active, false, "no active alerts"],
    ["alerts-resolved", alerts.recent, true, "none yet"],
  ]) {
    const container = $(id);
    container.innerHTML = "";
    if (list.length === 0) container.appendChild(element("li", "empty", empty));
    for (const alert of list) container.appendChild(alertItem(alert, resolved));
  }
}

function render(snapshot) {
  text("storage-backend", `storage ${snapshot.storage.backend}`);
  text("uptime", duration(snapshot.uptime_seconds));
  renderHealth(snapshot.health);

  const t = snapshot.throughput;
  const totals = snapshot.totals;
  text("sent-rate", rate(t.sent_per_second));
  text("delivered-rate", rate(t.delivered_per_second));
  text("acked-rate", rate(t.acked_per_second));
  text("sent-total", count(totals.sent));
  text("delivered-total", count(totals.delivered));
  text("acked-total", count(totals.acked));

  const l = snapshot.latency;
  text("lat-p50", seconds(l.ack.p50_seconds, l.ack.count > 0));
  text("lat-p95", seconds(l.ack.p95_seconds, l.ack.count > 0));
  text("lat-p99", seconds(l.ack.p99_seconds, l.ack.count > 0));
  const firstSeen = l.first_delivery.count > 0;
  text("lat-first", `${seconds(l.first_delivery.p50_seconds, firstSeen)} / ${seconds(l.first_delivery.p95_seconds, firstSeen)}`);
  text("lat-routing", seconds(l.routing.p95_seconds, l.routing.count > 0));

  const e = snapshot.errors;
  text("error-rate", percent(e.error_rate));
  $("error-rate").className = `big ${e.error_rate > 0.1 ? "unhealthy" : e.error_rate > 0 ? "degraded" : ""}`;
  text("routing-success", percent(e.routing_success_rate));
  text("rejected-total", count(totals.http_client_errors + totals.http_server_errors + totals.ws_frames_rejected));
  text("routing-failures", count(totals.routing_failures));
  text("failed-deliveries", `${count(totals.retried)} / ${count(totals.dead_lettered)}`);

  renderAgents(snapshot.agents);
  renderQueues(snapshot.queues);
  renderAlerts(snapshot.alerts);

  const s = snapshot.storage;
  text("commit-latency", s.commits ? seconds(s.mean_commit_seconds || s.last_commit_seconds) : "–");
  text("batch-size", s.commits ? (s.mean_batch_records || s.last_batch_records).toFixed(1) : "–");
  text("commit-rate", rate(s.commits_per_second));
  text("pending-records", count(s.pending_records));
  text("storage-state", s.problem ? (s.poisoned ? "stopped: " : "unavailable: ") + s.problem : "writing");
  $("storage-state").className = s.problem ? "unhealthy" : "healthy";
  text("memory-rss", bytes(snapshot.memory && snapshot.memory.resident_bytes));
  text("ws-connections", count(snapshot.websockets.connections));
  text("requests-total", count(totals.http_requests + totals.ws_frames));
  text("last-update", time(snapshot.timestamp));

  const at = snapshot.timestamp_ms;
  throughput[0].push(at, t.sent_per_second);
  throughput[1].push(at, t.delivered_per_second);
  throughput[2].push(at, t.acked_per_second);
  if (l.ack.count > 0) {
    latency[0].push(at, l.ack.p50_seconds);
    latency[1].push(at, l.ack.p95_seconds);
    latency[2].push(at, l.ack.p99_seconds);
  }
  drawCharts(at);
}

function drawCharts(now) {
  drawChart($("chart-throughput"), throughput, (v) => rate(v), now);
  drawChart($("chart-latency"), latency, (v) => (v === 0 ? "0" : seconds(v)), now);
}

function toast(alert, resolved) {
  // A resolved alert's message already says "resolved: ..." and what recovered.
  const label = resolved ? "" : alert.severity === "critical" ? "Critical: " : "Warning: ";
  const node = element("div", `toast ${resolved ? "resolved" : alert.severity}`, `${label}${alert.message}`);
  $("toasts").appendChild(node);
  setTimeout(() => node.remove(), 8000);
}

/** Toasts the alerts that started or resolved since the previous snapshot. */
function announceAlertChanges(alerts) {
  const active = new Map(alerts.active.map((alert) => [alert.id, alert]));
  if (knownAlerts !== null) {
    for (const [id, alert] of active) if (!knownAlerts.has(id)) toast(alert, false);
    for (const id of knownAlerts.keys()) {
      const resolved = alerts.recent.find((alert) => alert.id === id);
      if (!active.has(id) && resolved) toast(resolved, true);
    }
  }
  knownAlerts = active;
}

function setConnection(state) {
  const pill = $("connection-state");
  const labels = { live: "live", down: "disconnected" };
  pill.textContent = labels[state];
  pill.className = `pill pill-${state}`;
}

/** The numbers on the page are old: dim them and say since when. */
function showUnreachable(reason) {
  if (unreachableSince === null) unreachableSince = Date.now();
  const since = new Date(unreachableSince).toLocaleTimeString("en-GB", { hour12: false });
  text("unreachable", `${reason} since ${since}${rendered ? ": the numbers below are from then" : ""}`);
  $("unreachable").hidden = false;
  document.body.classList.add("stale");
  setConnection("down");
}

function showReachable() {
  unreachableSince = null;
  $("unreachable").hidden = true;
  document.body.classList.remove("stale");
  setConnection("live");
}

async function seedCharts() {
  try {
    const response = await fetch("/api/v1/metrics/export?hours=1", { headers: authHeaders });
    if (!response.ok) return;
    const history = await response.json();
    for (const point of history.points) {
      const at = Date.parse(point.timestamp);
      throughput[0].push(at, point.sent_per_second);
      throughput[1].push(at, point.delivered_per_second);
      throughput[2].push(at, point.acked_per_second);
      if (point.ack_latency_p99_seconds > 0) {
        latency[0].push(at, point.ack_latency_p50_seconds);
        latency[1].push(at, point.ack_latency_p95_seconds);
        latency[2].push(at, point.ack_latency_p99_seconds);
      }
    }
  } catch (error) {
    // The polls fill the charts anyway.
  }
}

async function poll() {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), POLL_TIMEOUT_MS);
  try {
    const response = await fetch("/api/v1/metrics/current", { headers: authHeaders, signal: abort.signal });
    if (response.ok) {
      const snapshot = await response.json();
      showReachable();
      render(snapshot);
      rendered = true;
      announceAlertChanges(snapshot.alerts);
    } else if (response.status === 401) {
      showUnreachable("the server wants a token (open this page as /#token=TOKEN)");
    } else {
      showUnreachable(`server answers ${response.status}`);
    }
  } catch (error) {
    showUnreachable("server unreachable");
  } finally {
    clearTimeout(timer);
    setTimeout(poll, POLL_INTERVAL_MS);
  }
}

drawLegend($("legend-throughput"), throughput);
drawLegend($("legend-latency"), latency);
window.addEventListener("resize", () => drawCharts(Date.now()));
seedCharts().then(poll);
