// wharf dashboard: polls the admin API every two seconds and renders it.
// Every string from the API goes into the page as a text node (never as markup).
"use strict";

(() => {
  const POLL_MS = 2000;
  const FETCH_TIMEOUT_MS = 5000;
  const API = "../api/";
  const PAGE_SIZE = 500;
  const MAX_PAGES = 100;
  const CERT_WARN_DAYS = 21;
  const CERT_CRITICAL_DAYS = 7;
  const DAY_MS = 86400000;

  const $ = (id) => document.getElementById(id);

  // What the last successful poll returned, when, and the last failure.
  const view = { data: null, at: null, error: null };

  // ---- DOM helpers -------------------------------------------------------

  /** Builds an element; children are nodes or values shown as text. */
  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else node.setAttribute(key, String(value));
    }
    append(node, children);
    return node;
  }

  function append(node, children) {
    for (const child of children.flat(Infinity)) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
  }

  const muted = (text) => h("span", { class: "muted" }, text);

  /** A status as the API spells it (`enabled`, `UP`...), coloured by meaning. */
  function badge(status) {
    const text = String(status || "unknown");
    const s = text.toLowerCase();
    const kind = {
      enabled: "ok", up: "ok", valid: "ok", active: "ok",
      warning: "warn", pending: "warn",
      disabled: "bad", down: "bad", error: "bad", expired: "bad",
    }[s] || "neutral";
    return h("span", { class: "badge " + kind }, text);
  }

  function chips(items, cls) {
    if (!items || items.length === 0) return muted("\u2014");
    return h("span", { class: "chips" }, items.map((i) => h("span", { class: cls ? "chip " + cls : "chip" }, i)));
  }

  function table(headers, rows, empty) {
    if (rows.length === 0) return h("p", { class: "empty" }, empty);
    return h("table", {},
      h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows));
  }

  /** A row spanning the table listing `errors`, or nothing. */
  function errorRow(errors, span) {
    if (!errors || errors.length === 0) return null;
    return h("tr", { class: "errors" },
      h("td", { colspan: span }, h("ul", {}, errors.map((e) => h("li", {}, e)))));
  }

  function ago(seconds) {
    if (seconds < 60) return Math.max(0, Math.floor(seconds)) + " s ago";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min ago";
    if (seconds < 86400) return Math.floor(seconds / 3600) + " h ago";
    return Math.floor(seconds / 86400) + " d ago";
  }

  const clock = (date) => date.toLocaleTimeString([], { hour12: false });

  /** `2026-11-25` (UTC) for an RFC 3339 time; the input itself when unreadable. */
  function day(rfc3339) {
    const t = new Date(rfc3339);
    return Number.isNaN(t.getTime()) ? String(rfc3339) : t.toISOString().slice(0, 10);
  }

  /** `2026-11-25 10:42 UTC` for an RFC 3339 time. */
  function minute(rfc3339) {
    const t = new Date(rfc3339);
    return Number.isNaN(t.getTime()) ? String(rfc3339) : t.toISOString().slice(0, 16).replace("T", " ") + " UTC";
  }

  // ---- fetching ------------------------------------------------------------

  async function fetchJSON(path) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
    try {
      const resp = await fetch(API + path, { cache: "no-store", signal: ctl.signal });
      if (!resp.ok) throw new Error("GET /api/" + path + " answered " + resp.status);
      return { body: await resp.json(), next: resp.headers.get("X-Next-Page") };
    } catch (e) {
      if (e.name === "AbortError") throw new Error("GET /api/" + path + " timed out");
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Every page of a list endpoint. */
  async function fetchList(path) {
    const all = [];
    for (let page = 1; page <= MAX_PAGES; page++) {
      const { body, next } = await fetchJSON(path + "?per_page=" + PAGE_SIZE + "&page=" + page);
      if (Array.isArray(body)) all.push(...body);
      if (!next || Number(next) <= page) break;
    }
    return all;
  }

  async function poll() {
    try {
      const [overview, version, entrypoints, routers, services, middlewares, certificates, providers] =
        await Promise.all([
          fetchJSON("overview").then((r) => r.body),
          fetchJSON("version").then((r) => r.body),
          fetchList("entrypoints"),
          fetchList("http/routers"),
          fetchList("http/services"),
          fetchList("http/middlewares"),
          fetchList("certificates"),
          fetchList("providers"),
        ]);
      view.data = { overview, version, entrypoints, routers, services, middlewares, certificates, providers };
      view.at = new Date();
      view.error = null;
    } catch (e) {
      view.error = (e && e.message) || String(e);
      if (view.error === "Failed to fetch") view.error = "the admin entrypoint does not answer";
    }
    render();
    setTimeout(poll, POLL_MS);
  }

  // ---- rendering -----------------------------------------------------------

  function render() {
    renderConnection();
    const d = view.data;
    if (!d) return;
    $("version").replaceChildren(
      "v" + (d.version.Version || "?"),
      d.version.startDate ? " \u00b7 up since " + minute(d.version.startDate) : "");
    $("summary").replaceChildren(...summaryCards(d));
    $("entrypoints").replaceChildren(entrypointTable(d.entrypoints));
    $("providers").replaceChildren(providerTable(d.providers, d.routers));
    renderRouters();
    $("services").replaceChildren(serviceTable(d.services));
    $("middlewares").replaceChildren(middlewareTable(d.middlewares));
    $("certificates").replaceChildren(certificateTable(d.certificates));
  }

  function renderConnection() {
    const conn = $("connection");
    const banner = $("banner");
    if (view.error) {
      conn.className = "connection down";
      conn.replaceChildren("API unreachable");
      banner.hidden = false;
      banner.replaceChildren(
        h("strong", {}, "API unreachable: "), view.error,
        view.at ? " \u2014 showing data from " + clock(view.at) + ", retrying every 2 s." : " \u2014 retrying every 2 s.");
    } else {
      conn.className = "connection live";
      conn.replaceChildren(h("span", { class: "dot" }), "live \u00b7 updated " + clock(view.at));
      banner.hidden = true;
      banner.replaceChildren();
    }
  }

  function summaryCards(d) {
    const http = d.overview.http || {};
    const soon = d.certificates.filter((c) => daysLeft(c) !== null && daysLeft(c) < CERT_WARN_DAYS).length;
    const card = (title, counts, extra) => h("div", { class: "card" },
      h("div", { class: "card-title" }, title),
      h("div", { class: "card-total" }, counts.total),
      h("div", { class: "card-detail" },
        counts.warnings ? h("span", { class: "warn-text" }, counts.warnings + " warning" + (counts.warnings === 1 ? "" : "s")) : null,
        counts.errors ? h("span", { class: "bad-text" }, counts.errors + " error" + (counts.errors === 1 ? "" : "s")) : null,
        !counts.warnings && !counts.errors && !extra ? h("span", { class: "ok-text" }, "all healthy") : null,
        extra));
    const zero = { total: 0, warnings: 0, errors: 0 };
    const down = d.services.reduce((n, s) =>
      n + Object.values(s.serverStatus || {}).filter((st) => st !== "UP").length, 0);
    return [
      card("Routers", http.routers || zero),
      card("Services", http.services || zero,
        down ? h("span", { class: "bad-text" }, down + " server" + (down === 1 ? "" : "s") + " down") : null),
      card("Middlewares", http.middlewares || zero),
      card("Certificates", {
        total: d.certificates.length,
        warnings: soon,
        errors: d.certificates.filter((c) => c.lastError || c.status === "error" || c.status === "expired").length,
      }),
    ];
  }

  function entrypointTable(entrypoints) {
    const rows = entrypoints.map((e) => h("tr", {},
      h("td", { class: "name" }, e.name),
      h("td", {}, h("code", {}, e.address || "")),
      h("td", {}, e.http && e.http.tls ? h("span", { class: "chip tls" }, "TLS") : null,
        e.name === "traefik" ? h("span", { class: "chip" }, "admin") : null)));
    return table(["Name", "Address", ""], rows, "No entrypoints.");
  }

  function providerTable(providers, routers) {
    const elapsed = view.at ? (Date.now() - view.at.getTime()) / 1000 : 0;
    const rows = providers.map((p) => {
      const count = routers.filter((r) => r.provider === p.name).length;
      const last = p.lastConfiguration
        ? h("span", { title: p.lastConfiguration }, ago(p.secondsSince + elapsed))
        : h("span", { class: "warn-text" }, "waiting for its first configuration");
      return h("tr", {},
        h("td", { class: "name" }, p.name),
        h("td", {}, p.lastConfiguration ? badge("active") : badge("pending")),
        h("td", {}, last),
        h("td", { class: "num" }, p.configurations),
        h("td", { class: "num" }, count));
    });
    return table(["Provider", "Status", "Last configuration", "Updates", "Routers"], rows,
      "No provider is configured.");
  }

  function routerMatches(r, query) {
    if (!query) return true;
    const fields = [r.name, r.rule, r.service, r.status, r.provider,
      ...(r.entryPoints || []), ...(r.using || []), ...(r.middlewares || []), ...(r.error || [])];
    if (r.tls && r.tls.certResolver) fields.push(r.tls.certResolver);
    return fields.some((f) => f && String(f).toLowerCase().includes(query));
  }

  function renderRouters() {
    if (!view.data) return;
    const all = view.data.routers;
    const query = $("router-filter").value.trim().toLowerCase();
    const shown = all.filter((r) => routerMatches(r, query));
    $("router-count").replaceChildren(query ? shown.length + " of " + all.length : all.length + " total");
    const rows = shown.map((r) => [
      h("tr", { class: r.status === "disabled" ? "row-bad" : r.status === "warning" ? "row-warn" : "" },
        h("td", {}, badge(r.status)),
        h("td", { class: "name" }, r.name),
        h("td", {}, r.rule ? h("code", { class: "rule" }, r.rule) : muted("\u2014")),
        h("td", {}, chips(r.using && r.using.length ? r.using : r.entryPoints)),
        h("td", {}, tlsCell(r.tls)),
        h("td", {}, r.service || muted("\u2014")),
        h("td", {}, chips(r.middlewares, "mw"))),
      errorRow(r.error, 7),
    ]);
    $("routers").replaceChildren(table(
      ["Status", "Name", "Rule", "Entrypoints", "TLS", "Service", "Middlewares"], rows,
      query ? "No router matches \u201c" + query + "\u201d." : "No routers."));
  }

  function tlsCell(tls) {
    if (!tls) return muted("\u2014");
    return h("span", { class: "chips" },
      h("span", { class: "chip tls" }, "TLS"),
      tls.certResolver ? h("span", { class: "chip", title: "certificate resolver" }, tls.certResolver) : null,
      tls.options ? h("span", { class: "chip", title: "TLS options" }, tls.options) : null);
  }

  function serverList(s) {
    const status = s.serverStatus || {};
    if (s.loadBalancer && Array.isArray(s.loadBalancer.servers)) {
      const seen = new Set();
      const items = s.loadBalancer.servers.map((srv) => {
        const url = srv.url || srv.address || "";
        const key = url in status ? url : url.replace(/\/+$/, "");
        seen.add(key);
        return h("li", {}, badge(status[key] || "unknown"), " ", h("code", {}, url));
      });
      for (const [url, st] of Object.entries(status)) {
        if (!seen.has(url)) items.push(h("li", {}, badge(st), " ", h("code", {}, url)));
      }
      return items.length ? h("ul", { class: "servers" }, items) : muted("no servers");
    }
    if (s.weighted && Array.isArray(s.weighted.services)) {
      return h("ul", { class: "servers" }, s.weighted.services.map((w) =>
        h("li", {}, w.name, muted(" weight " + (w.weight === undefined ? 1 : w.weight)))));
    }
    return muted("\u2014");
  }

  function serviceTable(services) {
    const rows = services.map((s) => [
      h("tr", { class: s.status === "disabled" ? "row-bad" : "" },
        h("td", {}, badge(s.status)),
        h("td", { class: "name" }, s.name),
        h("td", {}, s.type || ""),
        h("td", {}, serverList(s)),
        h("td", {}, chips(s.usedBy))),
      errorRow(s.error, 5),
    ]);
    return table(["Status", "Name", "Type", "Servers and health", "Used by"], rows, "No services.");
  }

  function middlewareTable(middlewares) {
    const rows = middlewares.map((m) => [
      h("tr", { class: m.status === "disabled" ? "row-bad" : "" },
        h("td", {}, badge(m.status)),
        h("td", { class: "name" }, m.name),
        h("td", {}, m.type || ""),
        h("td", {}, chips(m.usedBy))),
      errorRow(m.error, 4),
    ]);
    return table(["Status", "Name", "Type", "Used by"], rows, "No middlewares.");
  }

  function daysLeft(c) {
    if (!c.notAfter) return null;
    const t = Date.parse(c.notAfter);
    return Number.isNaN(t) ? null : (t - Date.now()) / DAY_MS;
  }

  function certificateTable(certs) {
    const rows = certs.map((c) => {
      const days = daysLeft(c);
      let cls = "";
      let expiry = muted("not issued");
      if (days !== null) {
        cls = days < CERT_CRITICAL_DAYS ? "row-bad" : days < CERT_WARN_DAYS ? "row-warn" : "";
        const left = days < 0 ? "expired " + Math.ceil(-days) + " days ago" : Math.floor(days) + " days left";
        expiry = h("span", { class: "expiry", title: c.notAfter },
          day(c.notAfter), " ",
          h("span", { class: days < CERT_CRITICAL_DAYS ? "bad-text" : days < CERT_WARN_DAYS ? "warn-text" : "muted" },
            "(" + left + ")"));
      }
      const sans = (c.domains || []).filter((d) => d !== c.main);
      return [
        h("tr", { class: cls },
          h("td", {}, badge(c.status)),
          h("td", { class: "name" }, c.main, sans.length ? h("div", { class: "muted small" }, sans.join(", ")) : null),
          h("td", {}, c.resolver || ""),
          h("td", {}, expiry),
          h("td", {}, c.renewAt ? h("span", { title: c.renewAt }, day(c.renewAt)) : muted("\u2014")),
          h("td", {}, chips(c.routers))),
        errorRow(c.lastError ? ["ACME: " + c.lastError] : null, 6),
      ];
    });
    return table(["Status", "Domains", "Resolver", "Expires", "Renewal", "Routers"], rows,
      "No managed certificates: no router asks an ACME certificate resolver for one.");
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("router-filter").addEventListener("input", renderRouters);
    poll();
  });
})();
