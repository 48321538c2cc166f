// tagledger console: the auditor's screens (count sessions; ERP book stock, differences, approval).
// Plain JavaScript, no build step.  Plugs into the console through window.tagledger.addView;
// everything it shows comes from /v1/audit with the signed-in key.
"use strict";

(() => {
  const T = window.tagledger;
  if (!T) return; // the console itself did not load
  const { el } = T;
  const fmt = (n) => (n === null || n === undefined ? "" : Number(n).toLocaleString());
  const money = (v) => (v === null || v === undefined ? "" : v.toFixed(2));
  const signed = (n) => (n > 0 ? `+${n}` : String(n));
  const denied = (err, scope) => (err.status === 403 ? `This screen needs a key with the ${scope} scope.` : err.message);
  document.head.append(el("link", { rel: "stylesheet", href: "/console/static/audit.css" }));
  const json = (body) => ({ method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

  function table(headers, rows, id) {
    return el("table", { id },
      el("thead", {}, el("tr", {}, headers.map((h) => el("th", { class: h.num ? "num" : null, text: h.text || h })))),
      el("tbody", {}, rows));
  }
  const td = (text, num) => el("td", { class: num ? "num" : null, text });

  // -- count sessions -------------------------------------------------------------------

  const count = { ctx: null, id: null, zones: [] };
  const countSection = el("section", {},
    el("div", { class: "card" },
      el("h2", { text: "Open a count" }),
      el("p", { class: "hint", text: "The items on hand now become what the count expects to find. Leave every zone unticked to count the whole store." }),
      el("div", { id: "count-zones", class: "chips" }),
      el("button", { type: "button", id: "count-open", text: "Open count" }),
      el("p", { id: "count-error", class: "error", role: "alert" })),
    el("div", { class: "card" },
      el("h2", { text: "Counts" }),
      el("table", { id: "counts" },
        el("thead", {}, el("tr", {}, ["Opened", "Zones", "State", "Seen"].map((h) => el("th", { text: h })))),
        el("tbody")),
      el("p", { class: "empty", text: "No count yet for this store." })),
    el("div", { id: "count-detail", class: "card wide", hidden: true },
      el("h2", {}, "Count ", el("code", { id: "count-id" }), " ", el("span", { id: "count-state" })),
      el("div", { id: "count-coverage" }),
      el("div", { id: "count-send" },
        el("h3", { text: "Send reads" }),
        el("p", { class: "hint", text: "One EPC per line (hex or urn:epc:id:sgtin:...), e.g. from a handheld sweep. Reads of the store's readers while the count is open count too." }),
        el("form", { id: "count-reads-form" },
          el("textarea", { id: "count-reads", rows: 4, placeholder: "3074257BF7194E4000001A85" }),
          el("select", { id: "count-read-zone" }),
          el("button", { type: "submit", text: "Send reads" })),
        el("button", { type: "button", id: "count-close", class: "danger", text: "Close count and record the result" })),
      el("div", { id: "count-result" })));

  async function loadCounts(ctx) {
    const out = await ctx.api(`/v1/audit/counts?store_id=${encodeURIComponent(ctx.store)}&limit=20`);
    ctx.fill("#counts", out.counts.map((c) => el("tr", { class: c.id === count.id ? "selected" : null },
      el("td", {}, el("button", { type: "button", class: "link", text: new Date(c.opened_at).toLocaleString(), onclick: () => pickCount(c.id) })),
      td(c.zones ? c.zones.join(", ") : "whole store"),
      el("td", {}, ctx.badge(c.state, c.state === "open" ? "ok" : "closed")),
      td(`${fmt(c.expected_seen)} / ${fmt(c.expected)}`, true))));
    return out.counts;
  }

  async function loadZones(ctx) {
    const store = await ctx.api(ctx.storePath(""));
    count.zones = store.zones;
    document.querySelector("#count-zones").replaceChildren(...store.zones.map((z) =>
      el("label", { class: "chip" }, el("input", { type: "checkbox", value: z.id, "data-zone": z.id }), ` ${z.name || z.id}`)));
    document.querySelector("#count-read-zone").replaceChildren(
      el("option", { value: "", text: "zone: where the count is" }),
      ...store.zones.map((z) => el("option", { value: z.id, text: `zone: ${z.name || z.id}` })));
  }

  function showCount(c) {
    count.id = c.id;
    document.querySelector("#count-detail").hidden = false;
    document.querySelector("#count-id").textContent = c.id;
    const state = document.querySelector("#count-state");
    state.replaceChildren(count.ctx.badge(c.state, c.state === "open" ? "ok" : "closed"));
    const cov = c.coverage;
    const pct = Math.round(cov.seen_share * 100);
    document.querySelector("#count-coverage").replaceChildren(
      el("p", { class: "coverage" },
        el("strong", { id: "count-seen", text: `${fmt(cov.expected_seen)} of ${fmt(cov.expected)}` }),
        ` expected items seen (${pct} %), ${fmt(cov.unexpected_seen)} not expected`),
      el("progress", { max: 100, value: pct }),
      el("div", { class: "chips" },
        ...cov.zones_swept.map((z) => el("span", { class: "chip swept", text: `✓ ${z}` })),
        ...cov.zones_not_swept.map((z) => el("span", { class: "chip", text: `○ ${z}` }))),
      el("p", { class: "hint", text: `Antennas swept: ${cov.antennas_swept.length} of ${cov.antennas_swept.length + cov.antennas_not_swept.length}` +
        (cov.antennas_not_swept.length ? ` (not yet: ${cov.antennas_not_swept.map((a) => `${a.reader_id}#${a.antenna}`).join(", ")})` : "") }));
    document.querySelector("#count-send").hidden = c.state !== "open";
    const result = document.querySelector("#count-result");
    if (!c.result) {
      result.replaceChildren();
      return;
    }
    const r = c.result;
    result.replaceChildren(
      el("h3", { text: `Result: ${fmt(r.counted)} counted of ${fmt(r.expected)} expected` }),
      table([{ text: "Product" }, { text: "GTIN" }, { text: "Expected", num: 1 }, { text: "Counted", num: 1 }, { text: "Difference", num: 1 }],
        r.by_gtin.map((g) => el("tr", { class: g.difference ? "differs" : null },
          td(g.product || "(unknown)"), td(g.gtin), td(fmt(g.expected), 1), td(fmt(g.counted), 1), td(signed(g.difference), 1))), "count-by-gtin"),
      el("h3", { text: `Expected but not seen (${fmt(r.missing_total)})` }),
      table(["Item", "GTIN", "Zone"], r.missing.map((m) => el("tr", {}, td(m.epc), td(m.gtin || ""), td(m.zone || ""))), "count-missing"));
  }

  async function pickCount(id) {
    try {
      count.id = id;
      await reloadCount();
      await loadCounts(count.ctx);
    } catch (err) {
      document.querySelector("#count-error").textContent = err.message;
    }
  }

  async function reloadCount() {
    if (!count.id) return;
    showCount(await count.ctx.api(`/v1/audit/counts/${encodeURIComponent(count.id)}`));
  }

  document.addEventListener("click", async (e) => {
    if (!count.ctx) return;
    const error = document.querySelector("#count-error");
    try {
      if (e.target.id === "count-open") {
        const zones = [...document.querySelectorAll("#count-zones input:checked")].map((i) => i.value);
        const body = { store_id: count.ctx.store };
        if (zones.length) body.zones = zones;
        const c = await count.ctx.api("/v1/audit/counts", json(body));
        error.textContent = "";
        showCount(c);
        await loadCounts(count.ctx);
      } else if (e.target.id === "count-close") {
        const c = await count.ctx.api(`/v1/audit/counts/${encodeURIComponent(count.id)}/close`, { method: "POST" });
        showCount(c);
        await loadCounts(count.ctx);
      }
    } catch (err) {
      error.textContent = err.message;
    }
  });

  document.addEventListener("submit", async (e) => {
    if (e.target.id !== "count-reads-form") return;
    e.preventDefault();
    const zone = document.querySelector("#count-read-zone").value || null;
    const reads = document.querySelector("#count-reads").value.split(/\s+/).filter(Boolean).map((epc) => ({ epc, zone }));
    if (!reads.length) return;
    try {
      showCount(await count.ctx.api(`/v1/audit/counts/${encodeURIComponent(count.id)}/reads`, json({ reads })));
      document.querySelector("#count-reads").value = "";
      document.querySelector("#count-error").textContent = "";
      await loadCounts(count.ctx);
    } catch (err) {
      document.querySelector("#count-error").textContent = err.message;
    }
  });

  T.addView({
    id: "count",
    title: "Count",
    section: countSection,
    async show(ctx) {
      try {
        const first = count.ctx === null || count.ctx.store !== ctx.store;
        count.ctx = ctx;
        if (first) {
          count.id = null;
          document.querySelector("#count-detail").hidden = true;
          await loadZones(ctx);
        }
        const counts = await loadCounts(ctx);
        if (!count.id && counts.length && counts[0].state === "open") count.id = counts[0].id;
        await reloadCount();
      } catch (err) {
        document.querySelector("#count-error").textContent = denied(err, "staff or audit");
      }
    },
    async refresh(ctx) {
      // Live: the store's reads while a count is open move its coverage.
      if (!count.ctx || document.querySelector("#view-count").hidden || ctx.store !== count.ctx.store) return;
      count.ctx = ctx;
      await reloadCount();
    },
  });

  // -- book stock: ERP upload, difference, approval ----------------------------------------

  const book = { ctx: null, id: null };
  const bookSection = el("section", {},
    el("div", { class: "card" },
      el("h2", { text: "Import book stock (ERP CSV)" }),
      el("p", { class: "hint", text: "Columns store, gtin, quantity, as_of (RFC 3339), optional unit_price. The whole file is imported or none of it." }),
      el("form", { id: "book-form" },
        el("input", { type: "file", id: "book-file", accept: ".csv,text/csv", required: true }),
        el("button", { type: "submit", text: "Upload" })),
      el("p", { id: "book-error", class: "error", role: "alert" })),
    el("div", { class: "card" },
      el("h2", { text: "Imports" }),
      el("table", { id: "book-imports" },
        el("thead", {}, el("tr", {}, ["Book as of", "File", "Lines", "By"].map((h) => el("th", { text: h })))),
        el("tbody")),
      el("p", { class: "empty", text: "No book stock imported for this store." })),
    el("div", { id: "book-report", class: "card wide", hidden: true },
      el("h2", {}, "RFID vs book ", el("small", { id: "book-as-of" })),
      el("p", { id: "book-totals" }),
      el("div", { id: "book-lines" }),
      el("form", { id: "approve-form" },
        el("input", { id: "approve-note", placeholder: "Note for the audit log (why these adjustments are accepted)" }),
        el("button", { type: "submit", id: "approve", text: "Approve selected adjustments" })),
      el("p", { id: "approve-done", class: "hint", role: "status" })));

  async function loadImports(ctx) {
    const out = await ctx.api(`/v1/audit/book-imports?store_id=${encodeURIComponent(ctx.store)}`);
    ctx.fill("#book-imports", out.imports.map((i) => el("tr", {},
      el("td", {}, el("button", { type: "button", class: "link", text: new Date(i.as_of).toLocaleString(), onclick: () => showReport(i.id) })),
      td(i.source), td(fmt(i.lines), 1), td(i.imported_by))));
    return out.imports;
  }

  function renderReport(rep) {
    book.id = rep.book_import.id;
    document.querySelector("#book-report").hidden = false;
    document.querySelector("#book-as-of").textContent = `book as of ${new Date(rep.book_import.as_of).toLocaleString()}, ${rep.book_import.source}`;
    const t = rep.totals;
    const value = t.over_value === null ? "" : ` (value +${money(t.over_value)} / −${money(t.under_value)})`;
    document.querySelector("#book-totals").textContent =
      `${t.gtins} products, ${t.matching} match; over ${t.over_units}, under ${t.under_units} units${value}; difference rate ${(t.difference_rate * 100).toFixed(1)} %`;
    document.querySelector("#book-lines").replaceChildren(table(
      ["", "Product", "GTIN", { text: "Book", num: 1 }, { text: "RFID", num: 1 }, { text: "Difference", num: 1 }, { text: "Value", num: 1 }, "Approved"],
      rep.lines.map((l) => el("tr", { class: l.kind, "data-gtin": l.gtin },
        el("td", {}, l.difference !== 0 && !l.approval ? el("input", { type: "checkbox", class: "pick", value: l.gtin, checked: true, title: "accept this adjustment" }) : null),
        td(l.product || "(unknown)"), td(l.gtin), td(fmt(l.book), 1), td(fmt(l.rfid), 1),
        el("td", { class: "num" }, book.ctx.badge(signed(l.difference), l.kind)),
        td(money(l.value), 1),
        td(l.approval ? `${l.approval.approved_by}, ${new Date(l.approval.approved_at).toLocaleString()}` : ""))),
      "book-diff"));
  }

  async function showReport(id) {
    renderReport(await book.ctx.api(`/v1/audit/book-imports/${encodeURIComponent(id)}/differences`));
    document.querySelector("#approve-done").textContent = "";
  }

  document.addEventListener("submit", async (e) => {
    if (!book.ctx) return;
    if (e.target.id === "book-form") {
      e.preventDefault();
      const file = document.querySelector("#book-file").files[0];
      if (!file) return;
      try {
        const out = await book.ctx.api(`/v1/audit/book-imports?source=${encodeURIComponent(file.name)}`,
          { method: "POST", headers: { "Content-Type": "text/csv" }, body: await file.text() });
        document.querySelector("#book-error").textContent = "";
        await loadImports(book.ctx);
        const here = out.imports.find((i) => i.store_id === book.ctx.store) || out.imports[0];
        if (here) await showReport(here.id);
      } catch (err) {
        document.querySelector("#book-error").textContent = err.message;
      }
    } else if (e.target.id === "approve-form") {
      e.preventDefault();
      const gtins = [...document.querySelectorAll("#book-diff input.pick:checked")].map((i) => i.value);
      if (!gtins.length) {
        document.querySelector("#approve-done").textContent = "Tick the adjustments to accept.";
        return;
      }
      try {
        const note = document.querySelector("#approve-note").value;
        const out = await book.ctx.api(`/v1/audit/book-imports/${encodeURIComponent(book.id)}/approvals`, json({ gtins, note }));
        renderReport(out.report);
        document.querySelector("#approve-done").textContent = `Approved ${out.approved.length} adjustment(s); recorded in the audit log.`;
      } catch (err) {
        document.querySelector("#approve-done").textContent = err.message;
      }
    }
  });

  T.addView({
    id: "book",
    title: "Book stock",
    section: bookSection,
    async show(ctx) {
      try {
        if (!book.ctx || book.ctx.store !== ctx.store) {
          book.id = null;
          document.querySelector("#book-report").hidden = true;
        }
        book.ctx = ctx;
        const imports = await loadImports(ctx);
        if (book.id) await showReport(book.id);
        else if (imports.length === 0) document.querySelector("#book-report").hidden = true;
      } catch (err) {
        document.querySelector("#book-error").textContent = denied(err, "audit");
      }
    },
  });
  // -- exports, KPIs and the audit log -------------------------------------------------------

  const exp = { ctx: null };
  const localNow = (offsetDays) => {
    const d = new Date(Date.now() + offsetDays * 86400000 - new Date().getTimezoneOffset() * 60000);
    return d.toISOString().slice(0, 16);
  };
  const iso = (local) => new Date(local).toISOString();
  const exportSection = el("section", {},
    el("div", { class: "card" },
      el("h2", { text: "Stock as of any moment (CSV)" }),
      el("form", { id: "stock-csv-form" },
        el("input", { type: "datetime-local", id: "stock-as-of", required: true }),
        el("button", { type: "submit", text: "Download CSV" })),
      el("p", { id: "stock-csv-done", class: "hint", role: "status" })),
    el("div", { class: "card" },
      el("h2", { text: "EPCIS 2.0 export" }),
      el("p", { class: "hint", text: "The store's item events as a GS1 EPCIS 2.0 JSON-LD document (needs an audit key)." }),
      el("form", { id: "epcis-form" },
        el("label", {}, "From ", el("input", { type: "datetime-local", id: "epcis-from", required: true })),
        el("label", {}, "To ", el("input", { type: "datetime-local", id: "epcis-to", required: true })),
        el("button", { type: "submit", text: "Export" })),
      el("p", { id: "epcis-done", class: "hint", role: "status" })),
    el("div", { class: "card wide" },
      el("h2", { text: "Accuracy, last 7 days" }),
      el("table", { id: "kpis" },
        el("thead", {}, el("tr", {}, ["Day ending", { text: "On hand", num: 1 }, { text: "Unconfirmed", num: 1 }, { text: "Unsold exits", num: 1 }, { text: "Book difference", num: 1 }]
          .map((h) => el("th", { class: h.num ? "num" : null, text: h.text || h })))),
        el("tbody")),
      el("p", { id: "kpis-error", class: "error", role: "alert" })),
    el("div", { class: "card wide" },
      el("h2", { text: "Audit log" }),
      el("table", { id: "audit-log" },
        el("thead", {}, el("tr", {}, ["When", "Who", "What", "Subject", "Detail"].map((h) => el("th", { text: h })))),
        el("tbody")),
      el("p", { class: "empty", text: "Nothing recorded for this store yet." }),
      el("p", { id: "log-error", class: "error", role: "alert" })));

  function download(text, name, type) {
    const link = el("a", { href: URL.createObjectURL(new Blob([text], { type })), download: name });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  }

  document.addEventListener("submit", async (e) => {
    if (!exp.ctx) return;
    const ctx = exp.ctx;
    if (e.target.id === "stock-csv-form") {
      e.preventDefault();
      const done = document.querySelector("#stock-csv-done");
      try {
        const at = iso(document.querySelector("#stock-as-of").value);
        const text = await ctx.api(`/v1/audit/stores/${encodeURIComponent(ctx.store)}/stock.csv?as_of=${encodeURIComponent(at)}`,
          { headers: { Accept: "text/csv" } });
        const name = `stock-${ctx.store}-${at.replace(/[:.]/g, "")}.csv`;
        download(text, name, "text/csv");
        done.textContent = `Downloaded ${name} (${text.trim().split("\n").length - 1} rows).`;
      } catch (err) {
        done.textContent = denied(err, "staff or audit");
      }
    } else if (e.target.id === "epcis-form") {
      e.preventDefault();
      const done = document.querySelector("#epcis-done");
      try {
        const from = iso(document.querySelector("#epcis-from").value);
        const to = iso(document.querySelector("#epcis-to").value);
        const text = await ctx.api(`/v1/audit/stores/${encodeURIComponent(ctx.store)}/epcis?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`,
          { headers: { Accept: "application/ld+json" } });
        const events = JSON.parse(text).epcisBody.eventList.length;
        const name = `epcis-${ctx.store}-${from.slice(0, 10)}.jsonld`;
        download(text, name, "application/ld+json");
        done.textContent = `Downloaded ${name} (${events} events).`;
      } catch (err) {
        done.textContent = denied(err, "audit");
      }
    }
  });

  async function loadKpis(ctx) {
    const midnight = new Date();
    midnight.setUTCHours(0, 0, 0, 0);
    const from = new Date(midnight.getTime() - 7 * 86400000).toISOString(); // seven whole days, then today so far
    const out = await ctx.api(`/v1/audit/stores/${encodeURIComponent(ctx.store)}/kpis?from=${encodeURIComponent(from)}&period=day`);
    const pct = (x) => `${(x * 100).toFixed(1)} %`;
    document.querySelector("#kpis tbody").replaceChildren(...out.points.map((p) => el("tr", {},
      td(new Date(p.at).toLocaleString()), td(fmt(p.on_hand), 1), td(`${fmt(p.unconfirmed)} (${pct(p.unconfirmed_share)})`, 1),
      td(fmt(p.unsold_exits), 1), td(p.difference_rate === null ? "" : pct(p.difference_rate), 1))));
  }

  async function loadLog(ctx) {
    const out = await ctx.api(`/v1/audit/log?store_id=${encodeURIComponent(ctx.store)}&limit=50`);
    ctx.fill("#audit-log", out.entries.map((e) => el("tr", {},
      td(new Date(e.at).toLocaleString()), td(e.actor), td(e.action), el("td", {}, el("code", { text: e.subject })),
      td(JSON.stringify(e.detail)))));
  }

  T.addView({
    id: "exports",
    title: "Exports & KPIs",
    section: exportSection,
    async show(ctx) {
      exp.ctx = ctx;
      for (const [sel, days] of [["#stock-as-of", 0], ["#epcis-from", -1], ["#epcis-to", 0]]) {
        const input = document.querySelector(sel);
        if (!input.value) input.value = localNow(days);
      }
      try {
        await loadKpis(ctx);
        document.querySelector("#kpis-error").textContent = "";
      } catch (err) {
        document.querySelector("#kpis-error").textContent = denied(err, "staff or audit");
      }
      try {
        await loadLog(ctx);
        document.querySelector("#log-error").textContent = "";
      } catch (err) {
        document.querySelector("#log-error").textContent = denied(err, "audit");
      }
    },
  });
})();
