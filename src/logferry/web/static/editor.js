/* Job editor: builds the form from the server's description, previews names and
   schedules, lists S3 buckets, tests the connection and saves through the JSON API
   (per-field errors shown at their fields). */
"use strict";
(() => {
  const data = JSON.parse(document.getElementById("editor-data").textContent);
  const meta = data.meta;
  const detail = data.job;            // null for a new job
  const cfg = detail ? detail.config : {};
  const $ = (id) => document.getElementById(id);
  const form = $("job-form");

  function options(sel, values, labels) {
    values.forEach((v, i) => sel.append(LF.el("option", { value: v }, labels ? labels[i] : v)));
  }
  const list = (s) => s.split(",").map((x) => x.trim()).filter(Boolean);

  // -- static choices ---------------------------------------------------------------
  options($("format"), meta.readers);
  options($("to"), meta.writers);
  options($("compress"), meta.compressions);
  options($("preset"), Object.keys(meta.presets), Object.entries(meta.presets).map(([k, v]) => `${k}: ${v}`));
  options($("interval"), meta.intervals.map(String), meta.intervals.map((m) => `${m}`));
  $("interval").append(LF.el("option", { value: "cron" }, "cron expression"));
  options($("dest-type"), meta.destinations.map((d) => d.type), meta.destinations.map((d) => d.label));
  meta.status_classes.forEach((c) => {
    const l = LF.el("label");
    l.append(LF.el("input", { type: "checkbox", value: c, name: "status-class" }), document.createTextNode(" " + c + " "));
    $("status-classes").append(l);
  });
  meta.fields.forEach((f) => {
    const l = LF.el("label");
    l.append(LF.el("input", { type: "checkbox", value: f, name: "field" }), document.createTextNode(" " + f));
    $("fields").append(l);
  });

  // -- destination fields -------------------------------------------------------------
  function destFields(type, values) {
    const box = $("dest-fields");
    box.textContent = "";
    const d = meta.destinations.find((x) => x.type === type);
    d.fields.forEach((f) => {
      const row = LF.el("div", { class: "row", "data-key": `destination.${f.name}` });
      const id = `d-${f.name}`;
      row.append(LF.el("label", { for: id }, f.label + (f.required ? " *" : "")));
      if (f.kind === "secret") {
        const ref = (values && values[f.name]) || {};
        const how = LF.el("select", { id: id + "-how", "data-secret": f.name });
        options(how, ["env", "secret"], ["environment variable", "secrets-file key"]);
        how.value = ref.secret ? "secret" : "env";
        const inp = LF.el("input", { id, "data-secret-name": f.name, placeholder: "name only, never the value", autocomplete: "off" });
        inp.value = ref.secret || ref.env || "";
        row.append(how, inp);
      } else if (f.name === "bucket") {
        const inp = LF.el("input", { id, list: "bucket-list", autocomplete: "off", placeholder: f.help || "" });
        inp.value = (values && values[f.name]) || "";
        row.append(inp, LF.el("datalist", { id: "bucket-list" }));
      } else {
        const inp = LF.el("input", { id, type: f.kind === "number" ? "number" : "text", placeholder: f.help || "" });
        inp.value = (values && values[f.name]) || "";
        row.append(inp);
      }
      row.append(LF.el("span", { class: "err" }));
      box.append(row);
    });
    $("list-buckets").hidden = type !== "s3";
  }

  function destination() {
    const type = $("dest-type").value;
    const out = { type };
    const d = meta.destinations.find((x) => x.type === type);
    d.fields.forEach((f) => {
      const inp = $(`d-${f.name}`);
      if (f.kind === "secret") {
        const how = $(`d-${f.name}-how`).value;
        out[f.name] = inp.value.trim() ? { [how]: inp.value.trim() } : {};
      } else {
        out[f.name] = inp.value.trim();
      }
    });
    if (detail && detail.destination && detail.destination.extra_options) out.extra_options = detail.destination.extra_options;
    return out;
  }

  // -- load a job into the form ---------------------------------------------------------
  const dest0 = detail ? detail.destination : { type: "s3" };
  $("dest-type").value = dest0.type;
  destFields(dest0.type, dest0);
  $("dest-type").addEventListener("change", () => { destFields($("dest-type").value, {}); destNote(); });
  // a saved job whose destination changes: what it delivered stays where it is
  const dest0Json = JSON.stringify(destination());
  function destNote() {
    const note = $("dest-note");
    note.hidden = !detail || JSON.stringify(destination()) === dest0Json;
    note.textContent = note.hidden ? "" : `The data already exported stays at ${detail.dest}: it is not moved or copied. ` +
      "Only what the job exports from now on goes to the new destination.";
  }
  $("dest-fields").addEventListener("input", destNote);
  if (detail) {
    $("name").value = detail.name;
    $("name").readOnly = true;
  }
  $("sites").value = (cfg.sites || []).join(", ");
  $("source").value = (cfg.source || []).join("\n");
  $("format").value = cfg.format || "";
  $("to").value = cfg.to || "jsonl";
  $("compress").value = cfg.compress || "gzip";
  // values the pickers do not offer (a raw field, a single status code) get a box of their own,
  // so that saving the form keeps them
  function tick(box, name, v) {
    let c = form.querySelector(`input[name=${name}][value="${CSS.escape(v)}"]`);
    if (!c) {
      const l = LF.el("label");
      c = LF.el("input", { type: "checkbox", value: v, name });
      l.append(c, document.createTextNode(" " + v + " "));
      box.append(l);
    }
    c.checked = true;
  }
  (cfg.fields || []).forEach((f) => tick($("fields"), "field", f));
  // the chosen fields in the user's order (ticking adds at the end; the arrows move one):
  // the job's `fields`, and so the columns of its output, in this order
  const chosen = (cfg.fields || []).slice();
  function drawOrder() {
    const ol = $("field-order");
    ol.textContent = "";
    chosen.forEach((f, i) => {
      const li = LF.el("li", { "data-field": f });
      li.append(document.createTextNode(f + " "));
      [["up", -1, "\u2191"], ["down", 1, "\u2193"]].forEach(([dir, d, arrow]) => {
        const b = LF.el("button", { type: "button", class: "move", "data-move": dir, "aria-label": `move ${f} ${dir}` }, arrow);
        b.disabled = !chosen[i + d];
        b.addEventListener("click", () => { [chosen[i], chosen[i + d]] = [chosen[i + d], chosen[i]]; drawOrder(); });
        li.append(b);
      });
      ol.append(li);
    });
    $("field-order-row").hidden = !chosen.length;
  }
  $("fields").addEventListener("change", (ev) => {
    const f = ev.target.value, i = chosen.indexOf(f);
    if (ev.target.checked && i < 0) chosen.push(f);
    if (!ev.target.checked && i >= 0) chosen.splice(i, 1);
    drawOrder();
  });
  drawOrder();
  const flt = cfg.filter || {};
  (flt.status || []).forEach((s) => tick($("status-classes"), "status-class", s));
  $("filter-sites").value = (flt.sites || []).join(", ");
  $("path-prefix").value = flt.path_prefix || "";
  const dtl = (v) => (v ? String(v).replace(/Z$|\+00:00$/, "").slice(0, 16) : "");
  $("since").value = dtl(flt.since);
  $("until").value = dtl(flt.until);
  $("where").value = cfg.where || "";
  const rot = cfg.rotate || {};
  $("max-mb").value = rot.max_bytes ? rot.max_bytes / 1e6 : (detail ? "" : 50);
  $("max-min").value = rot.max_age_secs ? rot.max_age_secs / 60 : (detail ? "" : 5);
  $("max-records").value = rot.max_records || "";
  const nm = cfg.name || {};
  $("preset").value = nm.preset || "";
  $("template").value = nm.template || "";
  $("service").value = cfg.service || "";
  $("site").value = cfg.site || "";
  if (cfg.cron) { $("interval").value = "cron"; $("cron").value = cfg.cron; }
  else if (cfg.every_minutes) {
    const v = String(cfg.every_minutes);
    if (![...$("interval").options].some((o) => o.value === v)) $("interval").append(LF.el("option", { value: v }, v));
    $("interval").value = v;
  }

  // -- the job table the form describes (keys the form does not show are kept) -----------
  function job() {
    const j = Object.assign({}, cfg);
    j.sites = list($("sites").value);
    j.source = $("source").value.split("\n").map((s) => s.trim()).filter(Boolean);
    j.format = $("format").value;
    j.to = $("to").value;
    j.compress = $("compress").value;
    j.fields = chosen.slice();
    const f = Object.assign({}, cfg.filter || {});
    f.status = [...form.querySelectorAll("input[name=status-class]:checked")].map((c) => c.value);
    f.sites = list($("filter-sites").value);
    f.path_prefix = $("path-prefix").value.trim();
    f.since = $("since").value ? $("since").value + ":00Z" : "";
    f.until = $("until").value ? $("until").value + ":00Z" : "";
    j.filter = f;
    j.where = $("where").value.trim();
    const num = (id, k) => { const v = $(id).value.trim(); return v === "" ? "" : Number(v) * k; };
    j.rotate = Object.assign({}, cfg.rotate || {}, {
      max_bytes: num("max-mb", 1e6) === "" ? "" : Math.round(num("max-mb", 1e6)),
      max_age_secs: num("max-min", 60), max_records: num("max-records", 1),
    });
    j.name = { preset: $("preset").value, template: $("preset").value ? "" : $("template").value.trim() };
    j.service = $("service").value.trim();
    j.site = $("site").value.trim();
    const iv = $("interval").value;
    j.every_minutes = iv && iv !== "cron" ? Number(iv) : "";
    j.cron = iv === "cron" ? $("cron").value.trim() : "";
    return j;
  }

  // -- errors at their fields -------------------------------------------------------------
  function clearErrors() {
    form.querySelectorAll(".row.invalid").forEach((r) => r.classList.remove("invalid"));
    form.querySelectorAll(".row .err").forEach((e) => { e.textContent = ""; });
    $("form-errors").textContent = "";
  }
  function showErrors(errs) {
    const rest = [];
    for (const [k, msg] of Object.entries(errs)) {
      let key = k;
      let row = form.querySelector(`.row[data-key="${CSS.escape(key)}"]`);
      while (!row && key.includes(".")) { key = key.slice(0, key.lastIndexOf(".")); row = form.querySelector(`.row[data-key="${CSS.escape(key)}"]`); }
      if (!row) { rest.push(`${k}: ${msg}`); continue; }
      row.classList.add("invalid");
      row.querySelector(".err").textContent = msg;
    }
    if (rest.length) $("form-errors").textContent = rest.join("\n");
  }

  // -- previews --------------------------------------------------------------------------
  let timer = null;
  function later(fn) { clearTimeout(timer); timer = setTimeout(fn, 250); }
  async function previews() {
    const q = new URLSearchParams({ job: $("name").value.trim(), template: $("preset").value ? "" : $("template").value.trim(),
      preset: $("preset").value, to: $("to").value, compress: $("compress").value, service: $("service").value.trim(), site: $("site").value.trim() });
    const r = await LF.api("GET", "/api/preview/names?" + q);
    const ol = $("name-preview");
    ol.textContent = "";
    const trow = form.querySelector('.row[data-key="name.template"] .err');
    trow.textContent = "";
    if (r.ok || (r.status === 422 && r.data && r.data.names)) {
      r.data.names.forEach((n) => ol.append(LF.el("li", {}, n)));
      trow.textContent = Object.values(r.data.errors || {}).join("; ");
      // an object is named after the time of its first record: say which time these use
      $("name-at").textContent = r.data.at ? `named after the job's first pending record, ${r.data.at}`
        : detail ? "no record pending: shown at the time now (an object is named after its first record's time)"
          : "shown at the time now (an object is named after its first record's time)";
    }
    const iv = $("interval").value;
    const sq = new URLSearchParams(iv === "cron" ? { cron: $("cron").value.trim() } : (iv ? { every_minutes: iv } : {}));
    $("cron").closest(".row").hidden = iv !== "cron";
    const s = await LF.api("GET", "/api/preview/schedule?" + sq);
    const so = $("schedule-preview");
    so.textContent = "";
    const cerr = form.querySelector('.row[data-key="cron"] .err');
    cerr.textContent = "";
    if (s.ok) {
      const errs = Object.values(s.data.errors || {});
      cerr.textContent = errs.join("; ");
      if (!s.data.next.length && !errs.length) so.append(LF.el("li", {}, "only when run by hand"));
      s.data.next.forEach((t) => so.append(LF.el("li", {}, t)));
    }
  }
  ["preset", "template", "to", "compress", "service", "site", "interval", "cron", "name"].forEach((id) => {
    $(id).addEventListener("input", () => later(previews));
    $(id).addEventListener("change", () => later(previews));
  });
  previews();

  // -- buckets and Test connection ---------------------------------------------------------
  $("list-buckets").addEventListener("click", async () => {
    const out = $("test-result");
    out.textContent = "listing buckets…";
    out.className = "";
    const r = await LF.api("POST", "/api/s3/buckets", { job: detail ? detail.name : "", destination: destination() });
    const dl = $("bucket-list");
    if (dl) dl.textContent = "";
    if (r.ok) {
      r.data.buckets.forEach((b) => dl.append(LF.el("option", { value: b })));
      out.textContent = `${r.data.buckets.length} buckets: ${r.data.buckets.join(", ")}`;
      out.className = "ok";
    } else {
      out.textContent = LF.detail(r.data);
      out.className = "error";
    }
  });
  $("test-connection").addEventListener("click", async () => {
    const out = $("test-result");
    clearErrors();
    out.textContent = "testing…";
    out.className = "";
    const r = await LF.api("POST", "/api/test-connection", { job: detail ? detail.name : "", destination: destination() });
    if (r.status === 422) { out.textContent = ""; showErrors(r.data.errors); return; }
    if (r.ok && r.data.ok) { out.textContent = `Connection OK: ${r.data.message}`; out.className = "ok"; }
    else { out.textContent = r.data && r.data.error ? `Failed to ${r.data.step} at ${r.data.dest}: ${r.data.error}` : LF.detail(r.data); out.className = "error"; }
  });

  // -- save ---------------------------------------------------------------------------------
  let version = detail ? detail.version : null;
  async function save(stop) {
    clearErrors();
    const body = { name: $("name").value.trim(), version, job: job(), destination: destination(), stop: !!stop };
    const r = detail
      ? await LF.api("PUT", `/api/jobs/${encodeURIComponent(detail.name)}`, body)
      : await LF.api("POST", "/api/jobs", body);
    if (r.ok) {
      version = r.data.version;
      LF.flash(`saved ${r.data.name}`, "ok");
      window.location.assign(`/jobs/${encodeURIComponent(r.data.name)}?saved=1`);
      return;
    }
    if (r.status === 422 && r.data && r.data.errors) { showErrors(r.data.errors); LF.flash("not saved: see the marked fields", "error"); return; }
    if (r.status === 409 && r.data && r.data.code === "stop_first") {
      if (window.confirm(`${r.data.detail}. Stop the job and save?`)) return save(true);
      LF.flash(r.data.detail, "error");
      return;
    }
    LF.flash(`not saved: ${LF.detail(r.data)}`, "error");
  }
  form.addEventListener("submit", (ev) => { ev.preventDefault(); save(false); });
  if (new URLSearchParams(location.search).get("saved")) LF.flash("saved", "ok");
})();
