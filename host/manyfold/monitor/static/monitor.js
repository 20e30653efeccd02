// manyfold monitor: draws the manifest's SVG (from /graph.svg) and lays each snapshot from the
// server-sent events stream (/events) over it and into the tables. No library: the page only
// sets text and colours on elements Graphviz already drew.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const EVENTS_MAX = 200; // lines the events list keeps
const STATE_COLOURS = { online: "#15803d", stale: "#b45309", gone: "#b91c1c" };

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function rate(v) { return v === null || v === undefined ? "-" : v.toFixed(1); }

function cell(row, text, attrs) {
  const td = el("td", text);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") td.className = v; else td.setAttribute(k, v);
  }
  row.appendChild(td);
  return td;
}

// --- the graph ----------------------------------------------------------------------------------

const graph = { clusters: new Map(), edges: new Map(), routes: new Map() };

function svgText(parent, x, y, cls, key) {
  let t = parent.querySelector(`text.mf-overlay[data-key="${key}"]`);
  if (!t) {
    t = document.createElementNS(SVG_NS, "text");
    t.setAttribute("class", "mf-overlay " + cls);
    t.setAttribute("data-key", key);
    t.setAttribute("x", x);
    t.setAttribute("y", y);
    t.setAttribute("text-anchor", "middle");
    parent.appendChild(t);
  }
  return t;
}

function indexGraph(svg) {
  for (const g of svg.querySelectorAll("g.cluster")) {
    const label = Array.from(g.querySelectorAll("text")).map((t) => t.textContent).join(" ");
    const m = /partition (\S+)/.exec(label);
    if (m) graph.clusters.set(m[1], g);
  }
  for (const g of svg.querySelectorAll("g.edge")) {
    const texts = Array.from(g.querySelectorAll("text"));
    texts.forEach((t, i) => {
      const m = /^link (\S+)$/.exec(t.textContent.trim());
      // The two blank lines the server's drawing leaves under the label hold the counters.
      if (m) graph.edges.set(m[1], { g, lines: texts.slice(i + 1, i + 3) });
    });
  }
  for (const g of svg.querySelectorAll("g.node")) {
    const title = g.querySelector("title");
    if (title && title.textContent.startsWith("r:")) graph.routes.set(title.textContent.slice(2), g);
  }
}

function loadGraph() {
  fetch("/graph.svg").then(async (r) => {
    const box = document.getElementById("graph");
    const text = await r.text();
    if (!r.ok) { box.replaceChildren(el("p", "no graph: " + text, "note")); return; }
    box.innerHTML = text;
    const svg = box.querySelector("svg");
    if (svg) indexGraph(svg);
    if (window.lastSnapshot) overlay(window.lastSnapshot);
  }).catch((e) => {
    document.getElementById("graph").replaceChildren(el("p", "no graph: " + e, "note"));
  });
}

function overlay(snap) {
  // Partitions: the node hosting each (or the node a device is behind) and its state.
  const owner = new Map();
  for (const n of snap.nodes) {
    for (const p of n.partitions) owner.set(p, { node: n, how: "" });
    for (const d of n.devices) owner.set(d.partition, { node: n, how: `device ${d.state}, ` });
  }
  for (const [partition, g] of graph.clusters) {
    const poly = g.querySelector("polygon, path");
    const label = g.querySelector("text");
    const o = owner.get(partition);
    if (!poly || !label) continue;
    const t = svgText(g, label.getAttribute("x"), Number(label.getAttribute("y")) + 12, "", "cluster");
    if (o) {
      poly.setAttribute("stroke", STATE_COLOURS[o.node.state]);
      poly.setAttribute("stroke-width", "2");
      t.setAttribute("class", `mf-overlay mf-node-${o.node.state}`);
      t.textContent = `${o.how}node ${o.node.name}: ${o.node.state}`;
    } else {
      t.textContent = "no node";
    }
    t.setAttribute("data-partition", partition);
  }
  // Links: both ends' numbers, at the link's edge label.
  const byLink = new Map();
  for (const k of snap.links) {
    if (!byLink.has(k.name)) byLink.set(k.name, []);
    byLink.get(k.name).push(k);
  }
  for (const [name, { g, lines }] of graph.edges) {
    const ends = byLink.get(name) || [];
    lines.forEach((t, i) => {
      t.setAttribute("class", "mf-overlay mf-counter");
      t.setAttribute("data-link", name);
      t.setAttribute("data-line", i);
    });
    if (lines.length < 2) continue;
    if (!ends.length) { lines[0].textContent = "no status"; lines[1].textContent = ""; continue; }
    const events = Math.max(...ends.map((k) => Math.max(k.events_tx, k.events_rx)));
    const perS = Math.max(...ends.map((k) => Math.max(k.tx_per_s || 0, k.rx_per_s || 0)));
    const drops = ends.reduce((s, k) => s + k.dropped, 0);
    const queued = ends.reduce((s, k) => s + k.queued, 0);
    const up = ends.every((k) => k.state === "up" && k.fresh);
    lines[0].textContent = `${events} ev, ${perS.toFixed(1)}/s${up ? "" : ", down"}`;
    lines[1].textContent = `drops ${drops}, queued ${queued}`;
    for (const p of g.querySelectorAll("path")) p.setAttribute("stroke", up ? "#dc2626" : "#9ca3af");
  }
  // Routes: their taints.
  const taints = new Map();
  for (const rt of snap.taints) {
    if (rt.taints.length) taints.set(rt.route, (taints.get(rt.route) || []).concat(rt.taints));
  }
  for (const [route, g] of graph.routes) {
    const shape = g.querySelector("path, polygon");
    const names = Array.from(new Set(taints.get(route) || []));
    if (shape) shape.setAttribute("stroke", names.length ? "#86198f" : "black");
    const existing = g.querySelector("text.mf-overlay");
    if (!names.length && !existing) continue;
    const texts = g.querySelectorAll("text");
    const last = texts[texts.length - (existing ? 2 : 1)];
    const t = svgText(g, last.getAttribute("x"), Number(last.getAttribute("y")) + 11, "mf-taint", "taint");
    t.textContent = names.length ? (names.length === 1 ? names[0] : `${names.length} taints`) : "";
    let tip = g.querySelector("title.mf-tip");
    if (!tip) { tip = document.createElementNS(SVG_NS, "title"); tip.setAttribute("class", "mf-tip"); t.appendChild(tip); }
    tip.textContent = names.join(", ");
    t.setAttribute("data-route", route);
  }
}

// --- the tables ---------------------------------------------------------------------------------

function tables(snap) {
  const counts = { online: 0, stale: 0, gone: 0 };
  for (const n of snap.nodes) counts[n.state] += 1;
  document.getElementById("summary").textContent =
    `poll ${snap.seq}, every ${snap.interval_s} s, lease ${snap.lease_s} s: ` +
    `${counts.online} online, ${counts.stale} stale, ${counts.gone} gone`;
  document.getElementById("summary").setAttribute("data-seq", snap.seq);

  const nodes = document.querySelector("#nodes tbody");
  nodes.replaceChildren(...snap.nodes.map((n) => {
    const row = el("tr");
    row.setAttribute("data-node", n.name);
    cell(row, n.name);
    cell(row, n.state, { class: n.state, "data-field": "state" });
    cell(row, n.age_s === null ? "never" : `${n.age_s.toFixed(1)} s ago`);
    cell(row, n.partitions.join(", ") || "-");
    cell(row, n.devices.map((d) => `${d.partition} (${d.state})`).join(", ") || "-");
    cell(row, n.state !== "online" ? "-" : n.taints_known ? "answered" : "unknown", { "data-field": "taints" });
    return row;
  }));

  const links = document.querySelector("#links tbody");
  links.replaceChildren(...snap.links.map((k) => {
    const row = el("tr", null, k.fresh ? "" : "old");
    const at = { "data-node": k.node, "data-link": k.name };
    cell(row, k.node);
    cell(row, k.name);
    cell(row, k.state, { class: k.state === "up" ? "online" : "gone" });
    for (const f of ["events_tx", "events_rx"]) cell(row, k[f], { ...at, "data-field": f, class: "num" });
    cell(row, rate(k.tx_per_s), { class: "num" });
    cell(row, rate(k.rx_per_s), { class: "num" });
    for (const f of ["dropped", "queued", "unacked"]) cell(row, k[f], { ...at, "data-field": f, class: "num" });
    cell(row, `${k.provided.join(", ") || "-"} / ${k.requested.join(", ") || "-"}`, { class: k.missing.length ? "missing" : "" });
    return row;
  }));

  const taints = document.querySelector("#taints tbody");
  taints.replaceChildren(...snap.taints.map((t) => {
    const row = el("tr");
    const added = Array.from(new Set(t.added.map((a) => `${a.kind} ${a.name}`))).join(", ");
    cell(row, t.node); cell(row, t.route); cell(row, t.taints.join(", ") || "-", { class: "taint" });
    cell(row, added || "-"); cell(row, t.repaired.join(", ") || "-");
    return row;
  }));

  const list = document.getElementById("events");
  for (const e of snap.events) {
    const when = new Date(e.time_s * 1000).toLocaleTimeString();
    list.prepend(el("li", `${when} ${e.text}`, e.kind));
  }
  while (list.children.length > EVENTS_MAX) list.lastElementChild.remove();
}

function show(snap) {
  window.lastSnapshot = snap;
  tables(snap);
  overlay(snap);
}

// --- the stream ---------------------------------------------------------------------------------

function connect() {
  const stream = document.getElementById("stream");
  const source = new EventSource("/events"); // reconnects by itself (the server says when)
  source.onopen = () => { stream.textContent = "live"; stream.className = "stream live"; };
  source.onerror = () => { stream.textContent = "reconnecting"; stream.className = "stream lost"; };
  source.onmessage = (message) => show(JSON.parse(message.data));
}

loadGraph();
connect();
