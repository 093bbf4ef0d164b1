/* logferry console: shared helpers (no framework; every value is set as text, never as HTML). */
"use strict";
const LF = (() => {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;

  async function api(method, url, body) {
    const opts = { method, headers: { "Accept": "application/json" }, credentials: "same-origin" };
    if (method !== "GET") opts.headers["X-CSRF-Token"] = csrf;
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const resp = await fetch(url, opts);
    let data = null;
    try { data = await resp.json(); } catch (e) { data = null; }
    return { status: resp.status, ok: resp.ok, data };
  }

  function flash(text, kind) {
    const el = document.getElementById("flash");
    if (!el) return;
    el.textContent = text || "";
    el.className = kind || "";
  }

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === false || v === null || v === undefined) continue;
      e.setAttribute(k, v === true ? "" : String(v));
    }
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function detail(d) {
    if (!d) return "request failed";
    if (typeof d.detail === "string") return d.detail;
    return JSON.stringify(d.detail || d);
  }

  return { api, flash, el, detail };
})();
