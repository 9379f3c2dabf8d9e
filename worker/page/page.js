// The in-flight page: polls the worker's API and renders it with textContent only (never HTML),
// so nothing from a payload can become markup or script. Ages count up every second.
"use strict";

const REFRESH_MS = 5000;
const ROWS = 500;
const RECENT = 50;

// Bidirectional controls (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C) in a name would
// reorder what it shows ("\u202Eevil" reads "live"): they are shown as their code points instead,
// and each cell is isolated from its neighbours' direction (page.css).
const BIDI_CONTROLS = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

function shown(text) {
  if (text === null || text === undefined) return "";
  return String(text).replace(BIDI_CONTROLS, (c) => `[U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}]`);
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = shown(text);
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function anchor(text, url) {
  const a = document.createElement("a");
  a.href = url;
  a.rel = "noopener noreferrer";
  a.target = "_blank";
  a.textContent = text;
  return a;
}

function linked(row, text, url, traceUrl) {
  const td = cell(row, "");
  if (typeof url === "string" && /^https?:\/\//.test(url)) {
    td.appendChild(anchor(shown(text), url));
  } else {
    td.textContent = shown(text);
  }
  if (typeof traceUrl === "string" && /^https?:\/\//.test(traceUrl)) {  // traces.ui_url is set
    td.append(" ");
    const trace = anchor("trace", traceUrl);
    trace.className = "trace";
    td.appendChild(trace);
  }
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

function ageCell(row, since) {
  const td = cell(row, "", "n age");
  td.dataset.since = since;
  return td;
}

function fill(id, items, build) {
  const body = document.querySelector(`#${id} tbody`);
  const rows = items.map((item) => { const row = document.createElement("tr"); build(row, item); return row; });
  body.replaceChildren(...rows);
}

function more(id, shown, total) {
  document.getElementById(id).textContent = total > shown ? `and ${total - shown} more (the oldest are shown)` : "";
}

// The polled runners that could take a label set's queued jobs (github.runners): none online is said
// plainly; nothing when the set is not judged (GitHub's own runners, or no polled scope reaches it).
function runnersCell(row, runners) {
  if (!runners) return cell(row, "");
  if (runners.online === 0) return cell(row, "no online runner has these labels", "unmatched");
  const busy = runners.idle === 0 ? " (all busy)" : "";
  return cell(row, `${runners.online} online / ${runners.idle} idle${busy}`, runners.idle === 0 ? "saturated" : "");
}

function render(inflight, recent) {
  fill("summary", inflight.by_runs_on, (row, s) => {
    cell(row, s.runs_on || "(none)");
    cell(row, s.queued, "n");
    cell(row, s.waiting, "n");
    cell(row, s.in_progress, "n");
    cell(row, duration(s.oldest_wait_seconds), "n");
    runnersCell(row, s.runners);
  });
  fill("jobs", inflight.jobs, (row, j) => {
    row.dataset.jobId = j.job_id;
    cell(row, j.phase.replace("_", " "), `phase-${j.phase}`);
    ageCell(row, j.since);
    cell(row, j.repository);
    cell(row, j.workflow);
    linked(row, j.job, j.html_url, j.trace_url);
    cell(row, j.runs_on);
    cell(row, j.runner_group);
  });
  fill("runs", inflight.runs, (row, r) => {
    row.dataset.runId = r.run_id;
    cell(row, r.phase.replace("_", " "), `phase-${r.phase}`);
    ageCell(row, r.since);
    cell(row, r.repository);
    linked(row, r.workflow || String(r.run_id), r.html_url);
    cell(row, r.event);
    cell(row, r.branch);
  });
  fill("recent", recent.jobs, (row, j) => {
    row.dataset.jobId = j.job_id;
    cell(row, j.conclusion, "conclusion");
    cell(row, j.completed_at ? new Date(j.completed_at).toLocaleString() : "");
    cell(row, duration(j.duration_seconds), "n");
    cell(row, j.repository);
    cell(row, j.workflow);
    linked(row, j.job, j.html_url, j.trace_url);
    cell(row, j.runs_on);
  });
  document.getElementById("jobs-total").textContent = `(${inflight.total_jobs})`;
  document.getElementById("runs-total").textContent = `(${inflight.total_runs})`;
  more("jobs-more", inflight.jobs.length, inflight.total_jobs);
  more("runs-more", inflight.runs.length, inflight.total_runs);
  tick();
}

function tick() {
  const now = Date.now();
  for (const td of document.querySelectorAll("td.age")) {
    td.textContent = duration((now - Date.parse(td.dataset.since)) / 1000);
  }
}

async function get(path) {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

async function refresh() {
  const status = document.getElementById("status");
  try {
    const [inflight, recent] = await Promise.all([get(`api/v1/inflight?limit=${ROWS}`), get(`api/v1/recent?limit=${RECENT}`)]);
    render(inflight, recent);
    status.className = "";
    status.textContent = `updated ${new Date().toLocaleTimeString()}; refreshes every ${REFRESH_MS / 1000} s`;
  } catch (error) {
    status.className = "error";
    status.textContent = `cannot read the worker's API (${error.message}); retrying`;
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
setInterval(tick, 1000);
