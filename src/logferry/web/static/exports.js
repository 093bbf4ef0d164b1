/* Exports page: Stop / Start / Run now, and the state of every job refreshed live. */
"use strict";
(() => {
  const table = document.getElementById("exports");
  if (!table) return;

  function lastText(j) {
    const r = j.last_run;
    if (!r) return "never";
    return `${r.ended || r.started} ${r.status}: ${r.objects} objects, ${r.records} records, ${r.bytes} bytes`;
  }

  function update(j) {
    const row = [...table.querySelectorAll("tr[data-job]")].find((r) => r.dataset.job === j.name);
    if (!row) return;
    const st = row.querySelector('[data-field="state"]');
    st.textContent = j.state;
    st.className = `state state-${j.state}`;
    const last = row.querySelector('[data-field="last"]');
    last.textContent = "";
    if (j.last_run) {
      const a = LF.el("a", { href: `/runs/${j.last_run.id}` }, j.last_run.ended || j.last_run.started);
      last.append(a, document.createTextNode(" " + lastText(j).split(" ").slice(1).join(" ")));
    } else {
      last.textContent = "never";
    }
    row.querySelector('[data-field="next"]').textContent = j.next_run || "-";
    const stop = row.querySelector('[data-action="stop"]');
    const start = row.querySelector('[data-action="start"]');
    const run = row.querySelector('[data-action="run"]');
    if (stop) stop.hidden = j.stopped;
    if (start) start.hidden = !j.stopped;
    if (run) run.disabled = j.stopped || !!j.running;
  }

  async function refresh() {
    const r = await LF.api("GET", "/api/jobs");
    if (r.ok) r.data.forEach(update);
  }

  table.addEventListener("click", async (ev) => {
    const b = ev.target.closest("button[data-action]");
    if (!b) return;
    const name = b.closest("tr").dataset.job;
    b.disabled = true;
    const r = await LF.api("POST", `/api/jobs/${encodeURIComponent(name)}/${b.dataset.action}`);
    b.disabled = false;
    if (r.ok) {
      LF.flash(b.dataset.action === "run" ? `${name}: run started` : `${name}: ${b.dataset.action === "stop" ? "stopped" : "started"}`, "ok");
    } else {
      LF.flash(`${name}: ${LF.detail(r.data)}`, "error");
    }
    refresh();
  });

  setInterval(refresh, 1500);
})();
