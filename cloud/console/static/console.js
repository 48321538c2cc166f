// tagledger store console.  Plain JavaScript, no build step, no third-party code.
//
// Everything it shows comes from the public /v1 API with the signed-in key; the
// page keeps the key in sessionStorage (gone when the tab closes).  Live: it
// reads the store's change stream (/v1/stores/{id}/changes, Server-Sent Events,
// read with fetch so that the key travels in a header) and refreshes its panels
// on every change, at most one refresh in flight.
"use strict";

(() => {
  const KEY = "tagledger.key";
  const REFRESH_DEBOUNCE_MS = 60;
  const READERS_POLL_MS = 10000;
  const FALLBACK_POLL_MS = 5000;
  // A refresh still waiting for an answer after this long no longer holds up the next one
  // (refresh() runs one at a time: a single response that never came froze the page for
  // good while the change stream stayed live).
  const REFRESH_STUCK_MS = 10000;
  const $ = (sel) => document.querySelector(sel);
  const S = {
    key: sessionStorage.getItem(KEY) || "",
    session: null,
    store: null,
    version: 0,
    zones: new Map(),
    stream: null,
    refreshing: null,
    again: false,
    pending: null,
    timers: [],
    views: [],
  };

  // -- small helpers ---------------------------------------------------------

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k.startsWith("data-")) node.setAttribute(k, v);
      else node[k] = v;
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  class ApiError extends Error {
    constructor(status, body) {
      const info = (body && body.error) || {};
      super(info.message || `HTTP ${status}`);
      this.status = status;
      this.code = info.code || "";
    }
  }

  async function api(path, options = {}) {
    const headers = Object.assign({ Accept: "application/json" }, options.headers || {});
    if (S.key) headers.Authorization = `Bearer ${S.key}`;
    const response = await fetch(path, { method: options.method || "GET", headers, body: options.body, signal: options.signal });
    if (!response.ok) {
      let body = null;
      try { body = await response.json(); } catch (_) { /* not JSON */ }
      throw new ApiError(response.status, body);
    }
    return headers.Accept === "application/json" ? response.json() : response.text();
  }

  // Whether the signed-in key has one of these scopes (admin has them all; no keys: everyone has).
  const has = (...scopes) => !S.session.auth_required || S.session.scopes.some((s) => s === "admin" || scopes.includes(s));

  const storePath = (suffix) => `/v1/stores/${encodeURIComponent(S.store)}${suffix}`;

  function when(iso) {
    if (!iso) return "never";
    const t = new Date(iso);
    const s = Math.round((Date.now() - t.getTime()) / 1000);
    if (s < 5) return "just now";
    if (s < 90) return `${s} s ago`;
    if (s < 5400) return `${Math.round(s / 60)} min ago`;
    if (s < 86400 * 2) return `${Math.round(s / 3600)} h ago`;
    return t.toLocaleString();
  }

  const timeCell = (iso) => el("td", { title: iso ? new Date(iso).toLocaleString() : "", text: when(iso) });
  const productName = (p, gtin) => (p && p.name) || gtin || "(no GTIN)";
  const badge = (text, cls) => el("span", { class: `badge ${cls || text}`, text });
  const epcButton = (epc, uri) => el("button", { type: "button", class: "epc", title: uri || epc, text: uri || epc, onclick: () => openItem(epc) });

  function fill(tableSel, rows) {
    const table = $(tableSel);
    const body = table.tBodies[0];
    body.replaceChildren(...rows);
    const empty = table.parentElement.querySelector(".empty");
    if (empty) empty.hidden = rows.length > 0;
  }

  function failed(card, err) {
    console.warn("tagledger console:", card, err.message);
  }

  // -- sign-in -----------------------------------------------------------------

  async function start() {
    try {
      const session = await api("/console/session");
      if (session.signed_in) {
        signedIn(session);
        return;
      }
      S.key = "";
      sessionStorage.removeItem(KEY);
      showSignIn(session.reason === "invalid_api_key" ? "That key is unknown or revoked." : "");
    } catch (err) {
      showSignIn(`The API answered: ${err.message}`);
    }
  }

  function showSignIn(message) {
    $("#sign-in").hidden = false;
    $("#sign-in-error").textContent = message || "";
    for (const v of document.querySelectorAll(".view")) v.hidden = true;
    $("#views").hidden = true;
    $(".store-pick").hidden = true;
    $("#sign-out").hidden = true;
    $("#key").focus();
  }

  $("#sign-in-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    S.key = $("#key").value.trim();
    try {
      const session = await api("/console/session");
      if (!session.signed_in) {
        S.key = "";
        $("#sign-in-error").textContent = "That key is unknown or revoked.";
        return;
      }
      sessionStorage.setItem(KEY, S.key);
      $("#key").value = "";
      signedIn(session);
    } catch (err) {
      S.key = "";
      $("#sign-in-error").textContent = err.message;
    }
  });

  $("#sign-out").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    S.key = "";
    S.session = null;
    S.store = null;
    stopLive();
    showSignIn("Signed out.");
  });

  function signedIn(session) {
    S.session = session;
    $("#sign-in").hidden = true;
    $("#sign-out").hidden = !session.auth_required;
    $("#views").hidden = false;
    const select = $("#store");
    select.replaceChildren(...session.stores.map((s) => el("option", { value: s.id, text: `${s.name} (${s.id})` })));
    $(".store-pick").hidden = session.stores.length === 0;
    const wanted = new URLSearchParams(location.hash.slice(1)).get("store");
    const first = session.stores.find((s) => s.id === wanted) || session.stores[0];
    if (!first) {
      showSignIn("This key may see no store.");
      return;
    }
    select.value = first.id;
    chooseStore(first.id);
    const item = new URLSearchParams(location.hash.slice(1)).get("item");
    if (item) openItem(item);
    else showView("store");
  }

  $("#store").addEventListener("change", (e) => chooseStore(e.target.value));

  function chooseStore(storeId) {
    S.store = storeId;
    S.zones = new Map();
    stopLive();
    refresh();
    startLive();
  }

  // -- views -------------------------------------------------------------------

  function showView(name) {
    for (const b of document.querySelectorAll("#views button")) b.classList.toggle("active", b.dataset.view === name);
    for (const v of document.querySelectorAll(".view")) v.hidden = v.id !== `view-${name}`;
    const extra = S.views.find((v) => v.id === name);
    if (extra && extra.show) extra.show(context());
  }

  $("#views").addEventListener("click", (e) => {
    const button = e.target.closest("button[data-view]");
    if (button) showView(button.dataset.view);
  });

  // -- the store view ------------------------------------------------------------

  async function loadZones() {
    const [store, stock] = await Promise.all([api(storePath("")), api(storePath("/stock?limit=10000"))]);
    const zones = new Map(store.zones.map((z) => [z.id, { zone: z, on_hand: 0, sellable: 0, unconfirmed: 0 }]));
    const products = new Map();
    for (const e of stock.entries) {
      const z = zones.get(e.zone) || { zone: { id: e.zone, name: e.zone, role: "" }, on_hand: 0, sellable: 0, unconfirmed: 0 };
      z.on_hand += e.on_hand;
      z.sellable += e.sellable;
      z.unconfirmed += e.unconfirmed;
      zones.set(e.zone, z);
      if (!e.on_hand) continue;
      const p = products.get(e.gtin) || { gtin: e.gtin, product: e.product, on_hand: 0, sellable: 0, unconfirmed: 0, zones: [] };
      p.on_hand += e.on_hand;
      p.sellable += e.sellable;
      p.unconfirmed += e.unconfirmed;
      p.zones.push(`${e.zone} ${e.on_hand}`);
      products.set(e.gtin, p);
    }
    const cards = [];
    for (const [id, z] of zones) {
      const before = S.zones.get(id);
      const card = el("div", { class: "zone", "data-zone": id },
        el("div", { class: "name", text: z.zone.name || id }),
        el("div", { class: "role", text: z.zone.role.replace("_", " ") }),
        el("div", { class: "count", text: z.on_hand }),
        el("div", { class: "split", text: `${z.sellable} sellable · ${z.unconfirmed} unconfirmed` }));
      if (before !== undefined && before !== z.on_hand) {
        card.classList.add("changed");
        setTimeout(() => card.classList.remove("changed"), 2000);
      }
      S.zones.set(id, z.on_hand);
      cards.push(card);
    }
    $("#zones").replaceChildren(...cards);
    renderStock([...products.values()]);
  }

  function renderStock(products) {
    const needle = $("#stock-filter").value.trim().toLowerCase();
    products.sort((a, b) => productName(a.product, a.gtin).localeCompare(productName(b.product, b.gtin)));
    const rows = products
      .filter((p) => !needle || p.gtin.includes(needle) || productName(p.product, p.gtin).toLowerCase().includes(needle))
      .map((p) => el("tr", { "data-gtin": p.gtin },
        el("td", { text: productName(p.product, p.gtin) }),
        el("td", { text: p.gtin }),
        el("td", { class: "num", text: p.on_hand }),
        el("td", { class: "num", text: p.sellable }),
        el("td", { class: "num", text: p.unconfirmed }),
        el("td", { text: p.zones.join(", ") })));
    fill("#stock", rows);
    S.lastProducts = products;
  }

  $("#stock-filter").addEventListener("input", () => S.lastProducts && renderStock(S.lastProducts));

  async function loadReplenishment() {
    const body = await api(storePath("/replenishment"));
    fill("#replenishment", body.needs.map((n) => el("tr", { "data-gtin": n.gtin },
      el("td", { text: productName(n.product, n.gtin) }),
      el("td", { class: "num", text: n.on_floor }),
      el("td", { class: "num", text: n.floor_target }),
      el("td", { class: "num", text: n.in_backroom }),
      el("td", { class: "num" }, n.to_bring ? el("strong", { text: n.to_bring }) : "order"))));
  }

  async function loadMissing() {
    const body = await api(storePath("/items?state=unobserved&limit=200"));
    const byZone = new Map();
    for (const i of body.items) byZone.set(i.zone || "?", (byZone.get(i.zone || "?") || 0) + 1);
    $("#missing-zones").replaceChildren(...[...byZone].map(([z, n]) => el("span", { class: "chip", text: `${z}: ${n}` })));
    fill("#missing", body.items.map((i) => el("tr", { "data-epc": i.epc },
      el("td", {}, epcButton(i.epc, i.epc_uri)),
      el("td", { text: productName(i.product, i.gtin) }),
      el("td", { text: i.zone || "" }),
      timeCell(i.since))));
  }

  async function loadExits() {
    const body = await api(storePath("/events?kind=exit&limit=20"));
    fill("#exits", body.events.map((e) => el("tr", { "data-epc": e.epc },
      timeCell(e.at),
      el("td", {}, epcButton(e.epc, e.epc_uri)),
      el("td", { text: productName(e.product, e.gtin) }),
      el("td", {}, badge(e.to_state)))));
  }

  async function loadAnomalies() {
    const body = await api(storePath("/anomalies"));
    const kinds = { duplicated_epc: "EPC on two tags", untagged_sales: "untagged, sold" };
    fill("#anomalies", body.anomalies.map((a) => el("tr", { "data-kind": a.kind, "data-gtin": a.gtin || "" },
      el("td", { text: kinds[a.kind] || a.kind }),
      el("td", { text: a.gtin || "" }),
      a.epc ? el("td", {}, epcButton(a.epc, a.epc)) : el("td", { text: "–" }),
      el("td", { class: "num", text: a.units }),
      timeCell(a.last_seen))));
  }

  async function loadReaders() {
    const body = await api(storePath("/readers"));
    fill("#readers", body.readers.map((r) => el("tr", { "data-reader": r.id },
      el("td", { title: `${r.model} · ${r.host}:${r.port}`, text: r.id }),
      el("td", { title: r.status_detail || "" }, badge(r.status)),
      timeCell(r.last_seen),
      el("td", { class: "num", text: r.reads_per_s === null ? "–" : r.reads_per_s }),
      el("td", { class: "chips" }, r.antenna_health.map((a) => el("span", {
        class: `badge ${a.health}`, "data-antenna": a.port,
        title: `${a.zone}: ${a.reads_per_s === null ? "no report" : `${a.reads_per_s} reads/s`}`,
        text: `${a.port} ${a.zone} ${a.health}`,
      }))))));
  }

  async function refreshStore() {
    if (!S.store) return; // signed out meanwhile
    const loads = { zones: loadZones, replenishment: loadReplenishment, missing: loadMissing, exits: loadExits };
    if (has("staff")) loads.readers = loadReaders; // reader health is for store staff
    if (has("staff", "audit")) loads.anomalies = loadAnomalies; // tag anomalies: stock and audit staff
    await Promise.all(Object.entries(loads).map(([name, load]) => load().catch((err) => failed(name, err))));
    for (const v of S.views) if (v.refresh) await Promise.resolve(v.refresh(context())).catch((err) => failed(v.id, err));
    S.version += 1;
    document.body.dataset.version = String(S.version);
    $("#updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  }

  // One refresh at a time; changes that arrive meanwhile ask for one more after it.
  function refresh() {
    if (S.refreshing) {
      S.again = true;
      return S.refreshing;
    }
    // Given up on: what it was loading is still to be shown, so one more refresh follows.
    const stuck = new Promise((resolve) => setTimeout(resolve, REFRESH_STUCK_MS)).then(() => { S.again = true; });
    S.refreshing = Promise.race([refreshStore(), stuck]).finally(() => {
      S.refreshing = null;
      if (S.again) {
        S.again = false;
        refresh();
      }
    });
    return S.refreshing;
  }

  function soon() {
    if (S.pending || !S.store) return;
    S.pending = setTimeout(() => { S.pending = null; refresh(); }, REFRESH_DEBOUNCE_MS);
  }

  // -- live updates ----------------------------------------------------------------

  function setLive(on, text) {
    const live = $("#live");
    live.classList.toggle("on", on);
    live.classList.toggle("off", !on);
    live.textContent = text;
  }

  function stopLive() {
    clearTimeout(S.pending);
    S.pending = null;
    if (S.stream) S.stream.abort();
    S.stream = null;
    for (const t of S.timers) clearInterval(t);
    S.timers = [];
    setLive(false, "offline");
  }

  function startLive() {
    const controller = new AbortController();
    S.stream = controller;
    $("#readers").closest(".card").hidden = !has("staff");
    if (has("staff")) S.timers.push(setInterval(() => loadReaders().catch((err) => failed("readers", err)), READERS_POLL_MS));
    // The change stream needs one of these scopes; an audit-only key looks every few seconds instead.
    if (!has("staff", "availability:read")) {
      setLive(false, "polling");
      S.timers.push(setInterval(soon, FALLBACK_POLL_MS));
      return;
    }
    follow(S.store, controller.signal);
  }

  async function follow(storeId, signal) {
    let lastId = "";
    let delay = 1000;
    while (!signal.aborted) {
      try {
        const headers = { Accept: "text/event-stream" };
        if (S.key) headers.Authorization = `Bearer ${S.key}`;
        if (lastId) headers["Last-Event-ID"] = lastId;
        const response = await fetch(`/v1/stores/${encodeURIComponent(storeId)}/changes`, { headers, signal });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        setLive(true, "live");
        delay = 1000;
        soon(); // whatever changed before the stream was up
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            let isChange = false;
            for (const line of block.split("\n")) {
              if (line.startsWith("id:")) lastId = line.slice(3).trim();
              else if (line.startsWith("event:") && line.slice(6).trim() === "availability") isChange = true;
            }
            if (isChange) soon();
          }
        }
      } catch (err) {
        if (signal.aborted) return;
        console.warn("tagledger console: change stream lost:", err.message);
      }
      if (signal.aborted) return;
      setLive(false, "reconnecting");
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 15000);
    }
  }

  // -- one item and its trail ---------------------------------------------------------

  function openItem(epc) {
    showView("item");
    $("#item-epc").value = epc;
    findItem(epc);
  }

  $("#item-form").addEventListener("submit", (e) => {
    e.preventDefault();
    findItem($("#item-epc").value.trim());
  });

  async function findItem(epc) {
    $("#item-error").textContent = "";
    $("#item").hidden = true;
    try {
      const ref = encodeURIComponent(epc);
      const [item, history] = await Promise.all([api(`/v1/items/${ref}`), api(`/v1/items/${ref}/history?limit=200`)]);
      const facts = [
        ["EPC", item.epc], ["Pure identity", item.epc_uri || "–"], ["Product", productName(item.product, item.gtin)],
        ["GTIN", item.gtin || "–"], ["Serial", item.serial || "–"], ["Store", item.store_id],
        ["State", badge(item.state)], ["Zone", item.zone || "–"], ["Since", new Date(item.since).toLocaleString()],
        ["On hand", item.on_hand ? "yes" : "no"], ["Confidence", item.confidence.toFixed(2)],
      ];
      $("#item-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", {}, v)]));
      fill("#trail", history.events.map((e) => el("tr", { "data-event": e.id },
        el("td", { title: `recorded ${new Date(e.recorded_at).toLocaleString()}`, text: new Date(e.at).toLocaleString() }),
        el("td", {}, badge(e.to_state)),
        el("td", { text: [e.from_state, e.from_zone].filter(Boolean).join(" · ") || "new" }),
        el("td", { text: [e.to_state, e.to_zone].filter(Boolean).join(" · ") }),
        el("td", { text: e.reason }),
        el("td", { text: e.reader_id ? `${e.reader_id} antenna ${e.antenna}${e.batch ? ` · batch ${e.batch.seq}` : ""}` : "–" }))));
      $("#item").hidden = false;
    } catch (err) {
      $("#item-error").textContent = err.status === 404 ? `No item ${epc} in the ledger.` : err.message;
    }
  }

  // -- extension point: more views (the auditor's screens add theirs here) ----------

  function context() {
    return { api, el, store: S.store, session: S.session, storePath, when, badge, fill, refresh: soon };
  }

  // view: {id, title, section (an element with class "view"), show(ctx)?, refresh(ctx)?}
  function addView(view) {
    S.views.push(view);
    view.section.id = `view-${view.id}`;
    view.section.classList.add("view");
    view.section.hidden = true;
    $("main").append(view.section);
    $("#views").append(el("button", { type: "button", "data-view": view.id, text: view.title }));
  }

  window.tagledger = { addView, api, el };
  document.addEventListener("DOMContentLoaded", start);
})();
