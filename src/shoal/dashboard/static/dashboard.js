// shoal's dashboard: a read-only view of the cluster, kept up to date over a websocket.
// The server sends a "reset" (every node, service and network, and recent events), then
// "delta"s of what changed, "event"s, and the tasks of the selected service or node
// ("tasks", then "taskdelta"s). Nothing here changes the cluster.
"use strict";

const state = {
  manager: true,
  servedBy: "",
  cluster: null,
  version: 0,
  nodes: new Map(),
  services: new Map(),
  networks: new Map(),
  events: [],
  selection: null, // {kind: "service" | "node", id}
  tasks: new Map(),
  tasksTotal: 0,
};
const MAX_EVENTS = 200;
const STACK_LABEL = "com.docker.stack.namespace";

// For tests and the curious: what the page holds, and how many messages it applied.
window.shoal = { state, applied: 0, loadedAt: Date.now() };

let socket = null;
let retry = 500;
let renderQueued = false;
const dirty = new Set();

function $(id) { return document.getElementById(id); }

function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
  })[c]);
}

function short(id) { return (id || "").slice(0, 12); }

function natural(a, b) {
  return String(a).localeCompare(String(b), undefined, { numeric: true, sensitivity: "base" });
}

function bytes(n) {
  if (!n) return "0 B";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(n >= 10 || i === 0 ? 0 : 1)} ${units[i]}`;
}

function cpus(nano) {
  const n = (nano || 0) / 1e9;
  return Number.isInteger(n) ? String(n) : n.toFixed(2);
}

// As Docker's units.HumanDuration: "Less than a second", "5 seconds", "About a minute"...
function humanDuration(elapsed) {
  const seconds = Math.floor(elapsed);
  if (seconds < 1) return "Less than a second";
  if (seconds === 1) return "1 second";
  if (seconds < 60) return `${Math.floor(seconds)} seconds`;
  const minutes = Math.floor(seconds / 60);
  if (minutes === 1) return "About a minute";
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(elapsed / 3600);
  if (hours === 1) return "About an hour";
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(hours / 24 / 365)} years`;
}

function ago(iso) {
  if (!iso) return "";
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  return `${humanDuration(seconds).toLowerCase()} ago`;  // lower-cased, as `service ps`
}

function capital(text) { return text ? text[0].toUpperCase() + text.slice(1) : ""; }

function stateTag(value, text) {
  return `<span class="state state-${esc(value)}">${esc(text ?? value)}</span>`;
}

// --- messages ---------------------------------------------------------------------------

function upsertAll(map, change) {
  if (!change) return false;
  for (const item of change.upsert || []) map.set(item.id, item);
  for (const id of change.remove || []) map.delete(id);
  return true;
}

function apply(message) {
  window.shoal.applied++;
  switch (message.type) {
    case "reset":
      state.manager = message.manager;
      state.servedBy = message.servedBy;
      state.cluster = message.cluster;
      state.version = message.version;
      state.nodes = new Map(message.nodes.map((n) => [n.id, n]));
      state.services = new Map(message.services.map((s) => [s.id, s]));
      state.networks = new Map(message.networks.map((n) => [n.id, n]));
      state.events = message.events.slice(-MAX_EVENTS).reverse();
      markAll();
      break;
    case "delta":
      state.version = message.version;
      if (upsertAll(state.nodes, message.nodes)) dirty.add("nodes");
      if (upsertAll(state.services, message.services)) dirty.add("services");
      if (upsertAll(state.networks, message.networks)) dirty.add("networks");
      if ("cluster" in message) state.cluster = message.cluster;
      dirty.add("header").add("stacks").add("tasks");
      break;
    case "event":
      state.events.unshift(message.event);
      state.events.length = Math.min(state.events.length, MAX_EVENTS);
      dirty.add("events");
      break;
    case "tasks":
      if (!sameSelection(message.selection)) return;
      state.tasks = new Map(message.tasks.map((t) => [t.id, t]));
      state.tasksTotal = message.total;
      dirty.add("tasks");
      break;
    case "taskdelta":
      if (!sameSelection(message.selection)) return;
      for (const t of message.upsert) {
        if (!state.tasks.has(t.id)) state.tasksTotal++;
        state.tasks.set(t.id, t);
      }
      for (const id of message.remove) {
        if (state.tasks.delete(id)) state.tasksTotal--;
      }
      dirty.add("tasks");
      break;
  }
  scheduleRender();
}

function sameSelection(sel) {
  return state.selection && sel && sel.kind === state.selection.kind && sel.id === state.selection.id;
}

function markAll() {
  for (const part of ["header", "nodes", "services", "tasks", "stacks", "networks", "events"]) {
    dirty.add(part);
  }
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  socket = new WebSocket(`${scheme}//${location.host}/api/stream`);
  socket.onopen = () => {
    retry = 500;
    document.body.dataset.connection = "live";
    $("connection").textContent = "live";
    if (state.selection) sendSelection();
  };
  socket.onmessage = (e) => apply(JSON.parse(e.data));
  socket.onclose = () => {
    document.body.dataset.connection = "reconnecting";
    $("connection").textContent = "reconnecting…";
    setTimeout(connect, retry);
    retry = Math.min(retry * 2, 5000);
  };
}

function sendSelection() {
  if (!socket || socket.readyState !== WebSocket.OPEN) return;
  const sel = state.selection;
  socket.send(JSON.stringify({ select: sel ? { [sel.kind]: sel.id } : null }));
}

function choose(kind, id) {
  if (state.selection && state.selection.kind === kind && state.selection.id === id) {
    state.selection = null;
  } else {
    state.selection = { kind, id };
  }
  state.tasks = new Map();
  state.tasksTotal = 0;
  sendSelection();
  dirty.add("tasks").add("nodes").add("services");
  scheduleRender();
}

// --- rendering --------------------------------------------------------------------------

function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    const parts = new Set(dirty);
    dirty.clear();
    if (parts.has("header")) renderHeader();
    if (parts.has("nodes")) renderNodes();
    if (parts.has("services")) renderServices();
    if (parts.has("tasks")) renderTasks();
    if (parts.has("stacks")) renderStacks();
    if (parts.has("networks")) renderNetworks();
    if (parts.has("events")) renderEvents();
    document.body.dataset.version = String(state.version);
  });
}

function fill(tbody, rows, columns, emptyText) {
  tbody.innerHTML = rows.length
    ? rows.join("")
    : `<tr class="empty"><td colspan="${columns}">${esc(emptyText)}</td></tr>`;
}

function renderHeader() {
  const c = state.cluster;
  const served = state.nodes.get(state.servedBy);
  const role = served ? (served.leader ? "leader" : "follower") : "";
  $("cluster").textContent = c
    ? `swarm ${short(c.id)} · served by ${served ? served.hostname : short(state.servedBy)}${role ? ` (${role})` : ""}`
    : "";
  const nodes = [...state.nodes.values()];
  const services = [...state.services.values()];
  const ready = nodes.filter((n) => n.status === "ready").length;
  const running = services.reduce((sum, s) => sum + s.running, 0);
  $("totals").innerHTML =
    `<span><b>${ready}</b>/${nodes.length} nodes ready</span>` +
    `<span><b>${services.length}</b> services</span>` +
    `<span><b>${running}</b> tasks running</span>`;
  const notice = $("notice");
  if (!state.manager) {
    notice.hidden = false;
    notice.textContent = "This node is not a swarm manager: it has no view of the cluster. " +
      "Open the dashboard of a manager.";
  } else {
    notice.hidden = true;
  }
}

function managerStatus(n) {
  if (n.leader) return `<span class="leader">Leader</span>`;
  if (n.reachability) return stateTag(n.reachability, capital(n.reachability));
  return "";
}

function renderNodes() {
  const nodes = [...state.nodes.values()].sort((a, b) => natural(a.hostname, b.hostname));
  const chosen = state.selection && state.selection.kind === "node" ? state.selection.id : null;
  fill($("nodes").tBodies[0], nodes.map((n) => `
    <tr class="pick${n.id === chosen ? " chosen" : ""}" data-kind="node" data-id="${esc(n.id)}"
        data-hostname="${esc(n.hostname)}" data-status="${esc(n.status)}"
        data-availability="${esc(n.availability)}" data-leader="${n.leader}">
      <td><b>${esc(n.hostname)}</b>${n.id === state.servedBy ? ' <span class="tag">this page</span>' : ""}</td>
      <td class="id">${esc(short(n.id))}</td>
      <td>${esc(capital(n.role))}</td>
      <td>${stateTag(n.availability, capital(n.availability))}</td>
      <td>${stateTag(n.status, capital(n.status))}${n.message && n.status !== "ready" ? `<div class="muted">${esc(n.message)}</div>` : ""}</td>
      <td>${managerStatus(n)}</td>
      <td class="mono">${esc(n.addr)}</td>
      <td>${cpus(n.reservedNanoCPUs)} / ${cpus(n.nanoCPUs)}</td>
      <td>${bytes(n.reservedMemoryBytes)} / ${bytes(n.memoryBytes)}</td>
      <td class="tasks-running">${n.runningTasks}</td>
    </tr>`), 10, "No nodes.");
}

function imageText(s) {
  const command = (s.command || []).join(" ");
  return command ? `${s.image} ${command}` : s.image;
}

function replicasText(s) {
  let text = `${s.running}/${s.desired}`;
  if (s.mode === "replicated-job") text += ` (${s.completed}/${s.totalCompletions} completed)`;
  if (s.mode === "global-job") text += ` (${s.completed}/${s.desired + s.completed} completed)`;
  return text;
}

function updateText(s) {
  const u = s.update;
  if (!u || !u.state) return "";
  let text = stateTag(u.state, u.state.replace("_", " "));
  if (u.state === "updating" || u.state === "rollback_started") {
    text += ` <span class="progress">${s.updated}/${s.desired}</span>`;
  }
  if (u.message) text += `<div class="muted">${esc(u.message)}</div>`;
  return text;
}

function renderServices() {
  const services = [...state.services.values()].sort((a, b) => natural(a.name, b.name));
  const chosen = state.selection && state.selection.kind === "service" ? state.selection.id : null;
  fill($("services").tBodies[0], services.map((s) => {
    const ratio = s.desired ? Math.min(1, s.running / s.desired) : 1;
    return `
    <tr class="pick${s.id === chosen ? " chosen" : ""}" data-kind="service" data-id="${esc(s.id)}"
        data-name="${esc(s.name)}" data-running="${s.running}" data-desired="${s.desired}">
      <td><b>${esc(s.name)}</b></td>
      <td class="id">${esc(short(s.id))}</td>
      <td>${esc(s.stack || "")}</td>
      <td>${esc(s.mode)}${s.runtime === "process" ? ' <span class="tag">process</span>' : ""}</td>
      <td class="replicas-cell"><span class="replicas">${esc(replicasText(s))}</span><span class="bar${ratio < 1 ? " short" : ""}"><i style="width:${Math.round(ratio * 100)}%"></i></span></td>
      <td class="mono">${esc(imageText(s))}</td>
      <td class="mono">${esc((s.ports || []).join(", "))}</td>
      <td class="update">${updateText(s)}</td>
    </tr>`;
  }), 8, "No services.");
}

function taskName(t, service) {
  const name = service ? service.name : short(t.serviceId);
  return t.slot ? `${name}.${t.slot}` : `${name}.${t.nodeId || ""}`;
}

function renderTasks() {
  const section = $("tasks-section");
  const sel = state.selection;
  if (!sel) { section.hidden = true; return; }
  section.hidden = false;
  const byService = sel.kind === "service";
  const subject = byService ? state.services.get(sel.id) : state.nodes.get(sel.id);
  $("tasks-title").textContent = byService
    ? `Tasks of service ${subject ? subject.name : short(sel.id)}`
    : `Tasks on node ${subject ? subject.hostname : short(sel.id)}`;
  $("tasks-where").textContent = byService ? "Node" : "Service";
  const tasks = [...state.tasks.values()];
  // As `service ps`: by slot (or node), the current task first, then its history.
  const key = (t) => {
    const service = state.services.get(t.serviceId);
    return [byService ? "" : (service ? service.name : t.serviceId), t.slot ? String(t.slot) : (t.nodeId || "")];
  };
  const current = (t) => (["new", "pending", "assigned", "accepted", "preparing", "ready", "starting", "running"].includes(t.desired) ? 0 : 1);
  tasks.sort((a, b) => {
    const [ka, kb] = [key(a), key(b)];
    return natural(ka[0], kb[0]) || natural(ka[1], kb[1]) || current(a) - current(b) ||
      (b.createdAt || "").localeCompare(a.createdAt || "");
  });
  let previous = null;
  const rows = tasks.map((t) => {
    const service = state.services.get(t.serviceId);
    const node = t.nodeId ? state.nodes.get(t.nodeId) : null;
    const group = key(t).join("\0");
    const history = group === previous;
    previous = group;
    const where = byService ? (node ? node.hostname : (t.nodeId ? short(t.nodeId) : "")) : (service ? service.name : short(t.serviceId));
    return `
    <tr class="${history ? "history" : ""}" data-id="${esc(t.id)}" data-node="${esc(node ? node.hostname : "")}"
        data-state="${esc(t.state)}" data-desired="${esc(t.desired)}">
      <td class="mono">${history ? " \\_ " : ""}${esc(taskName(t, service))}</td>
      <td class="id">${esc(short(t.id))}</td>
      <td>${esc(where)}</td>
      <td>${esc(capital(t.desired))}</td>
      <td>${stateTag(t.state, `${capital(t.state)} ${ago(t.since)}`)}</td>
      <td>${esc(t.error)}</td>
      <td class="mono">${esc((t.ports || []).join(", "))}</td>
    </tr>`;
  });
  fill($("tasks").tBodies[0], rows, 7, "No tasks.");
  $("tasks-note").textContent = state.tasksTotal > tasks.length
    ? `Showing ${tasks.length} of ${state.tasksTotal} tasks (current ones first).` : "";
}

function renderStacks() {
  const stacks = new Map();
  const entry = (name) => {
    if (!stacks.has(name)) stacks.set(name, { services: [], networks: [], running: 0, desired: 0 });
    return stacks.get(name);
  };
  for (const s of state.services.values()) {
    if (!s.stack) continue;
    const e = entry(s.stack);
    e.services.push(s.name);
    e.running += s.running;
    e.desired += s.desired;
  }
  for (const n of state.networks.values()) if (n.stack) entry(n.stack).networks.push(n.name);
  const names = [...stacks.keys()].sort(natural);
  fill($("stacks").tBodies[0], names.map((name) => {
    const e = stacks.get(name);
    return `<tr data-name="${esc(name)}">
      <td><b>${esc(name)}</b></td>
      <td>${e.services.sort(natural).map((s) => `<span class="tag">${esc(s)}</span>`).join("")}</td>
      <td>${e.networks.sort(natural).map((n) => `<span class="tag">${esc(n)}</span>`).join("")}</td>
      <td>${e.running}/${e.desired}</td>
    </tr>`;
  }), 4, "No stacks (services deployed with `stack deploy` are grouped here).");
}

function renderNetworks() {
  const users = new Map();
  for (const s of state.services.values()) {
    for (const id of s.networks || []) {
      const list = users.get(id) || [];
      list.push(s.name);
      users.set(id, list);
    }
  }
  const networks = [...state.networks.values()].sort((a, b) => natural(a.name, b.name));
  fill($("networks").tBodies[0], networks.map((n) => {
    const flags = [n.ingress && "ingress", n.internal && "internal", n.attachable && "attachable"].filter(Boolean);
    return `<tr data-id="${esc(n.id)}" data-name="${esc(n.name)}">
      <td><b>${esc(n.name)}</b></td>
      <td class="id">${esc(short(n.id))}</td>
      <td>${esc(n.driver)}</td>
      <td class="mono">${esc(n.subnet || "")}</td>
      <td class="mono">${esc(n.gateway || "")}</td>
      <td>${flags.map((f) => `<span class="tag">${f}</span>`).join("")}</td>
      <td>${esc(n.stack || "")}</td>
      <td>${(users.get(n.id) || []).sort(natural).map((s) => `<span class="tag">${esc(s)}</span>`).join("")}</td>
    </tr>`;
  }), 8, "No networks.");
}

function eventAttrs(attrs) {
  const parts = [];
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "name" || key.endsWith(".old")) continue;
    if (key.endsWith(".new")) {
      const field = key.slice(0, -4);
      const old = attrs[`${field}.old`];
      parts.push(old !== undefined ? `${field} ${old} → ${value}` : `${field} ${value}`);
    }
  }
  return parts.join(", ");
}

let newestShown = 0;

function renderEvents() {
  const list = $("events");
  const items = state.events.map((e) => {
    const when = new Date(e.timeNano / 1e6);
    const attrs = e.Actor.Attributes || {};
    const fresh = e.timeNano > newestShown && newestShown !== 0;
    return `<li class="${fresh ? "fresh" : ""}" data-type="${esc(e.Type)}" data-action="${esc(e.Action)}">
      <span class="when">${esc(when.toLocaleTimeString())}</span>
      <span class="what">${esc(e.Type)} ${esc(e.Action)}</span> ${esc(attrs.name || short(e.Actor.ID))}
      <span class="attrs">${esc(eventAttrs(attrs))}</span></li>`;
  });
  list.innerHTML = items.length ? items.join("") : `<li class="muted">No events yet.</li>`;
  if (state.events.length) newestShown = Math.max(newestShown, state.events[0].timeNano);
}

document.addEventListener("DOMContentLoaded", () => {
  for (const id of ["nodes", "services"]) {
    $(id).tBodies[0].addEventListener("click", (e) => {
      const row = e.target.closest("tr[data-id]");
      if (row) choose(row.dataset.kind, row.dataset.id);
    });
  }
  $("tasks-close").addEventListener("click", () => {
    state.selection = null;
    sendSelection();
    dirty.add("tasks").add("nodes").add("services");
    scheduleRender();
  });
  // "Running 5 seconds ago" ages.
  setInterval(() => { dirty.add("tasks"); scheduleRender(); }, 5000);
  connect();
});
