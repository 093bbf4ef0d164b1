/* Exports page: Stop / Start (which runs the catch-up at once) / Run now / Re-export /
   Duplicate / Delete, and every job's state, last run, last delivery and backlog refreshed
   live (the backlog, which reads the sources, less often). */
"use strict";
(() => {
  const table = document.getElementById("exports");
  if (!table) return;
  const rowOf = (name) => [...table.querySelectorAll("tr[data-job]")].find((r) => r.dataset.job === name);
  const counts = (r) => `${r.objects} objects, ${r.records} records, ${r.bytes} bytes`;

  function runText(r) {
    const kind = r.kind === "rerun" ? " (re-export)" : "";
    return `${r.status}${kind}: ${r.objects || r.status !== "ok" ? counts(r) : "nothing new"}`;
  }

  function linked(cell, prefix, r, rest) {
    cell.textContent = "";
    cell.append(document.createTextNode(prefix),
      LF.el("a", { href: `/runs/${r.id}` }, r.ended || r.started), document.createTextNode(rest));
  }

  function update(j) {
    const row = rowOf(j.name);
    if (!row) return;
    row.dataset.version = j.version;
    const st = row.querySelector('[data-field="state"]');
    st.textContent = j.state;
    st.className = `state state-${j.state}`;
    const last = row.querySelector('[data-field="last"]');
    if (j.last_run) linked(last, "", j.last_run, " " + runText(j.last_run));
    else last.textContent = "never";
    const dl = row.querySelector('[data-field="delivery"]');
    const d = j.last_delivery;
    if (d && (!j.last_run || d.id !== j.last_run.id)) linked(dl, "last delivery ", d, ": " + counts(d));
    else dl.textContent = !d && j.last_run ? "nothing delivered yet" : "";
    if (j.backlog) row.querySelector('[data-field="backlog"]').textContent = j.backlog.text;
    row.querySelector('[data-field="next"]').textContent = j.next_run || "-";
    const stop = row.querySelector('[data-action="stop"]');
    const start = row.querySelector('[data-action="start"]');
    const run = row.querySelector('[data-action="run"]');
    if (stop) stop.hidden = j.stopped;
    if (start) start.hidden = !j.stopped;
    if (run) run.disabled = !!j.running;
  }

  let ticks = 0;
  const lastSeen = new Map();  // job -> its last run's id and status, as last shown
  async function refresh(withBacklog) {
    const r = await LF.api("GET", "/api/jobs" + (withBacklog ? "?backlog=true" : ""));
    if (!r.ok) return;
    r.data.forEach(update);
    // a run that ended since changed the backlog: ask for it at once
    const now = (j) => (j.last_run ? `${j.last_run.id}:${j.last_run.status}` : "");
    const ended = r.data.some((j) => lastSeen.has(j.name) && lastSeen.get(j.name) !== now(j));
    r.data.forEach((j) => lastSeen.set(j.name, now(j)));
    if (ended && !withBacklog) refresh(true);
  }

  async function post(name, what, url, body) {
    const r = await LF.api("POST", url, body);
    if (r.ok) LF.flash(`${name}: ${what(r.data)}`, "ok");
    else LF.flash(`${name}: ${LF.detail(r.data)}`, "error");
    return r;
  }
  const jobUrl = (name) => `/api/jobs/${encodeURIComponent(name)}`;
  const start = (name) => post(name, (d) => (d.run_started ? "started; delivering what it missed now" : "started"),
    `${jobUrl(name)}/start?run=true`);

  const actions = {
    stop: (name) => post(name, () => "stopped", `${jobUrl(name)}/stop`),
    start,
    run: (name, row) => {
      if (!row.querySelector('[data-action="start"]').hidden) {
        // a stopped job: Run now means starting it (its run is the catch-up)
        if (window.confirm(`${name} is stopped. Start it and deliver what it missed now?`)) return start(name);
        return null;
      }
      return post(name, () => "run started", `${jobUrl(name)}/run`);
    },
    rerun: (name) => openRerun(name),
    duplicate: async (name) => {
      const copy = window.prompt(`Name of the copy of ${name} (created stopped):`, `${name}-copy`);
      if (!copy) return null;
      const r = await post(name, (d) => `copied to ${d.name} (stopped)`, `${jobUrl(name)}/duplicate`, { name: copy.trim() });
      if (r.ok) window.location.assign(`/jobs/${encodeURIComponent(r.data.name)}`);
      else if (r.status === 422 && r.data.errors) LF.flash(`${name}: not copied: ${Object.values(r.data.errors).join("; ")}`, "error");
      return r;
    },
    delete: async (name, row) => {
      if (!window.confirm(`Delete the job ${name}? Its history stays.`)) return null;
      const r = await LF.api("DELETE", `${jobUrl(name)}?version=${encodeURIComponent(row.dataset.version)}`);
      if (r.ok) { row.remove(); LF.flash(`${name}: deleted`, "ok"); }
      else LF.flash(`${name}: ${LF.detail(r.data)}`, "error");
      return r;
    },
  };

  table.addEventListener("click", async (ev) => {
    const b = ev.target.closest("button[data-action]");
    if (!b) return;
    const row = b.closest("tr");
    b.disabled = true;
    try {
      await actions[b.dataset.action](row.dataset.job, row);
    } finally {
      b.disabled = false;
    }
    refresh(false);
  });

  // -- Re-export: a past range, from the form under the table ----------------------------
  const form = document.getElementById("rerun-form");
  let rerunJob = null;
  function openRerun(name) {
    rerunJob = name;
    document.getElementById("rerun-job").textContent = name;
    form.hidden = false;
    form.querySelectorAll(".err").forEach((e) => { e.textContent = ""; });
    document.getElementById("rerun-since").focus();
    return null;
  }
  if (form) {
    document.getElementById("rerun-cancel").addEventListener("click", () => { form.hidden = true; });
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const utc = (id) => { const v = document.getElementById(id).value; return v ? (v.length === 16 ? v + ":00" : v) + "Z" : ""; };
      form.querySelectorAll(".err").forEach((e) => { e.textContent = ""; });
      const r = await LF.api("POST", `${jobUrl(rerunJob)}/rerun`, { since: utc("rerun-since"), until: utc("rerun-until") });
      if (r.ok) {
        form.hidden = true;
        LF.flash(`${rerunJob}: re-export of ${r.data.since} .. ${r.data.until} started`, "ok");
      } else if (r.status === 422 && r.data.errors) {
        for (const [k, msg] of Object.entries(r.data.errors)) {
          const row = form.querySelector(`.row[data-key="${k}"] .err`);
          if (row) row.textContent = msg;
        }
      } else {
        LF.flash(`${rerunJob}: ${LF.detail(r.data)}`, "error");
      }
      refresh(false);
    });
  }

  setInterval(() => refresh(++ticks % 20 === 0), 1500);
})();
