/* The Alerts page: rules with their state, editing (validated by the server), test
   notifications, silences and incidents.  Every value is set as text. */
"use strict";
(() => {
  const { api, flash, el, detail } = LF;
  let data = null;

  function cell(tr, text, cls) { tr.appendChild(el("td", cls ? { class: cls } : {}, text)); }

  function button(label, id, onclick) {
    const b = el("button", { type: "button", id }, label);
    b.addEventListener("click", onclick);
    return b;
  }

  function ruleRow(r) {
    const tr = el("tr", { "data-rule": r.name });
    cell(tr, r.name); cell(tr, r.kind); cell(tr, r.severity); cell(tr, r.condition);
    cell(tr, r.sites.join(", ") || "all");
    const st = el("td"); st.appendChild(el("span", { class: "state state-" + r.state }, r.state)); tr.appendChild(st);
    cell(tr, r.evaluated ? r.evaluated + " UTC" : "never");
    cell(tr, r.error ? "error: " + r.error : (r.value === null || r.value === undefined ? "" : String(r.value)));
    const act = el("td");
    if (!data.read_only) {
      act.appendChild(button("Edit", "edit-" + r.name, () => edit(r)));
      act.appendChild(button("Send test notification", "test-" + r.name, () => sendTest(r.name)));
      act.appendChild(button("Silence 1h", "silence-" + r.name, () => silence(r.name)));
    }
    tr.appendChild(act);
    return tr;
  }

  function render() {
    const tb = document.querySelector("#rules tbody");
    tb.replaceChildren(...data.rules.map(ruleRow));
    const firing = data.rules.filter((r) => r.state === "firing").length;
    document.getElementById("alerts-summary").textContent =
      `${data.rules.length} rules · ${firing} firing · channels: ${data.channels.join(", ") || "none"}`;
    document.querySelector("#silences tbody").replaceChildren(...data.silences.map((s) => {
      const tr = el("tr", { "data-silence": s.id });
      cell(tr, s.id); cell(tr, s.rule || "site " + s.site); cell(tr, s.until); cell(tr, s.comment);
      const td = el("td");
      if (!data.read_only) td.appendChild(button("End", "unsilence-" + s.id, () => unsilence(s.id)));
      tr.appendChild(td);
      return tr;
    }));
    document.querySelector("#incidents tbody").replaceChildren(...data.incidents.map((i) => {
      const tr = el("tr", { "data-incident": i.id });
      cell(tr, i.rule); cell(tr, i.severity); cell(tr, i.started); cell(tr, i.resolved || "firing");
      cell(tr, i.first || ""); cell(tr, i.last || "");
      cell(tr, i.peak === null ? "" : `${i.peak} ${i.unit}`);
      return tr;
    }));
  }

  async function load() {
    const r = await api("GET", "/api/alerts");
    if (!r.ok) { flash(detail(r.data), "error"); return; }
    data = r.data;
    render();
  }

  function edit(r) {
    document.getElementById("form-title").textContent = "Edit rule " + r.name;
    document.getElementById("r-name").value = r.name;
    document.getElementById("r-name").readOnly = true;
    document.getElementById("r-version").value = r.version;
    document.getElementById("r-body").value = JSON.stringify(r.rule, null, 1);
  }

  async function save(ev) {
    ev.preventDefault();
    const errs = document.getElementById("rule-errors");
    errs.replaceChildren();
    let rule;
    try { rule = JSON.parse(document.getElementById("r-body").value); } catch (e) {
      errs.appendChild(el("li", {}, "not valid JSON: " + e.message)); return;
    }
    const name = document.getElementById("r-name").value.trim();
    const version = document.getElementById("r-version").value || null;
    const r = await api("PUT", "/api/alerts/rules/" + encodeURIComponent(name), { rule, version });
    if (r.status === 422 && r.data && r.data.errors) {
      for (const [k, v] of Object.entries(r.data.errors)) errs.appendChild(el("li", { "data-field": k }, `${k}: ${v}`));
      return;
    }
    if (!r.ok) { flash(detail(r.data), "error"); return; }
    flash(`rule ${name} saved`, "ok");
    document.getElementById("r-version").value = r.data.version;
    await load();
  }

  async function sendTest(name) {
    const r = await api("POST", `/api/alerts/rules/${encodeURIComponent(name)}/test`);
    if (!r.ok) { flash(detail(r.data), "error"); return; }
    const parts = r.data.results.map((x) => `${x.channel}: ${x.status}${x.error ? " (" + x.error + ")" : ""}`);
    flash(parts.length ? "test notification: " + parts.join("; ") : "no channel to send to", parts.every((p) => p.includes(": sent")) ? "ok" : "error");
  }

  async function silence(name) {
    const r = await api("POST", "/api/alerts/silences", { rule: name, until: "1h" });
    if (!r.ok) { flash(detail(r.data), "error"); return; }
    flash(`rule ${name} silenced for an hour`, "ok");
    await load();
  }

  async function unsilence(id) {
    const r = await api("DELETE", "/api/alerts/silences/" + id);
    if (!r.ok) { flash(detail(r.data), "error"); return; }
    await load();
  }

  const form = document.getElementById("rule-form");
  if (form) {
    form.addEventListener("submit", save);
    document.getElementById("r-new").addEventListener("click", () => {
      document.getElementById("form-title").textContent = "New rule";
      document.getElementById("r-name").readOnly = false;
      document.getElementById("r-name").value = "";
      document.getElementById("r-version").value = "";
    });
  }
  load();
})();
