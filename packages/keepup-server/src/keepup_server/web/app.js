// Keepup's web page: no build step, no framework, no data ever written as HTML (textContent only).
// The token is sent as a bearer header and kept in this tab's sessionStorage, never in a cookie.
"use strict";

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "keepup-token";
const state = { threads: [], thread: null, checkpoints: [], selected: [], checkpoint: null, search: "" };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  return node;
}

function token() { return sessionStorage.getItem(TOKEN_KEY); }

function showBanner(text, kind = "error") {
  const b = $("banner");
  b.textContent = text;
  b.className = kind === "info" ? "info" : "";
  b.hidden = false;
}
function clearBanner() { $("banner").hidden = true; }

class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${token()}`, ...(options.headers || {}) };
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    options = { ...options, body: JSON.stringify(options.json) };
  }
  const res = await fetch(path, { ...options, headers });
  if (res.status === 401) { signOut("The token was refused; paste it again."); throw new ApiError(401, {}); }
  if (!res.ok) {
    let problem = {};
    try { problem = await res.json(); } catch (e) { problem = { title: res.statusText }; }
    throw new ApiError(res.status, problem);
  }
  return options.raw ? res : res.json();
}

function short(id) { return id ? id.slice(-8) : "-"; }
function when(iso) { return iso ? new Date(iso).toLocaleString() : "-"; }
function text(value) { return typeof value === "string" ? value : JSON.stringify(value, null, 2); }

// ---- sign in ----------------------------------------------------------------------------------
function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  $("app").hidden = true;
  $("token-form").hidden = false;
  if (message) showBanner(message);
}

async function start() {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname);
  }
  $("token-login").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token-input").value.trim());
    $("token-input").value = "";
    clearBanner();
    open();
  });
  $("search").addEventListener("input", debounce(() => { state.search = $("search").value; loadThreads(); }, 250));
  $("diff-button").addEventListener("click", () => {
    const [a, b] = orderByAge(state.selected);
    location.hash = `#/diff/${a}/${b}`;
  });
  $("restore-button").addEventListener("click", restore);
  $("fork-button").addEventListener("click", fork);
  $("more-threads").addEventListener("click", () => loadThreads(true));
  window.addEventListener("hashchange", route);
  if (token()) open(); else signOut();
}

async function open() {
  $("token-form").hidden = true;
  $("app").hidden = false;
  try {
    await loadThreads();
  } catch (e) {
    if (e.status !== 401) showBanner(e.message);
    return;
  }
  listen();
  route();
}

function debounce(fn, ms) { let t; return () => { clearTimeout(t); t = setTimeout(fn, ms); }; }

// ---- threads ----------------------------------------------------------------------------------
async function loadThreads(more = false) {
  const params = new URLSearchParams({ limit: "50" });
  if (state.search) params.set("q", state.search);
  if (more && state.threads.length) params.set("before", state.threads[state.threads.length - 1].id);
  const data = await api(`/api/threads?${params}`);
  state.threads = more ? state.threads.concat(data.threads) : data.threads;
  $("more-threads").hidden = data.threads.length < 50;
  renderThreads();
}

function renderThreads() {
  const list = $("thread-list");
  list.replaceChildren();
  if (!state.threads.length) {
    list.append(el("li", { class: "meta" }, state.search ? "No thread matches." : "No threads yet: run `keepup demo`."));
  }
  for (const t of state.threads) {
    const item = el(
      "li",
      {
        class: "thread-item" + (t.forked_from ? " fork" : "") + (state.thread && state.thread.id === t.id ? " active" : ""),
        dataset: { id: t.id },
        onclick: () => { location.hash = `#/thread/${t.id}`; },
      },
      t.name || t.id,
      el("small", {}, `${short(t.id)} · updated ${when(t.updated_at)}${t.forked_from ? " · fork" : ""}`),
    );
    list.append(item);
  }
}

// ---- routing ----------------------------------------------------------------------------------
async function route() {
  if (state.keepBanner) state.keepBanner = false; else clearBanner();
  const parts = location.hash.replace(/^#\/?/, "").split("/");
  for (const v of ["thread-view", "checkpoint-view", "diff-view"]) $(v).hidden = true;
  $("empty").hidden = true;
  try {
    if (parts[0] === "thread" && parts[1]) await showThread(parts[1]);
    else if (parts[0] === "checkpoint" && parts[1]) await showCheckpoint(parts[1]);
    else if (parts[0] === "diff" && parts[1] && parts[2]) await showDiff(parts[1], parts[2]);
    else $("empty").hidden = false;
  } catch (e) {
    if (e.status !== 401) showBanner(e.message);
  }
}

// ---- a thread's timeline ----------------------------------------------------------------------
async function showThread(id) {
  const [info, list, all] = await Promise.all([
    api(`/api/threads/${encodeURIComponent(id)}`),
    api(`/api/threads/${encodeURIComponent(id)}/checkpoints?limit=200`),
    api(`/api/threads?limit=200`),
  ]);
  const same = state.thread && state.thread.id === info.thread.id;
  state.thread = info.thread;
  state.checkpoints = list.checkpoints;
  state.selected = same ? state.selected.filter((s) => list.checkpoints.some((c) => c.id === s)) : [];
  renderThreads();
  $("thread-title").textContent = info.thread.name || info.thread.id;
  const lease = info.lease;
  $("thread-meta").textContent =
    `${info.thread.id} · ${list.checkpoints.length} checkpoints` +
    (lease ? ` · held by ${lease.holder.split("+")[0]} until ${when(lease.expires_at)}` : "");
  const forksAt = {};
  for (const t of all.threads) {
    if (t.parent_thread_id === id && t.forked_from) (forksAt[t.forked_from] = forksAt[t.forked_from] || []).push(t);
  }
  const timeline = $("timeline");
  timeline.replaceChildren();
  for (const cp of list.checkpoints) {
    const box = el("input", { type: "checkbox", class: "cp-select", "aria-label": `select ${cp.id}` });
    box.checked = state.selected.includes(cp.id);
    box.addEventListener("change", () => select(cp.id, box.checked));
    const label = cp.label || (cp.metadata && cp.metadata.event) || cp.source;
    const row = el(
      "li",
      { class: "cp-row" + (cp.id === info.thread.head ? " head" : "") + (cp.status === "failed" ? " failed" : ""), dataset: { id: cp.id } },
      box,
      el(
        "div",
        { class: "body", onclick: () => { location.hash = `#/checkpoint/${cp.id}`; } },
        `step ${cp.step} · ${label}`,
        el("br"),
        el("small", {}, `${short(cp.id)} · ${cp.status || "-"} · ${when(cp.created_at)}${cp.workspace ? " · files" : ""}`),
      ),
    );
    timeline.append(row);
    for (const f of forksAt[cp.id] || []) {
      timeline.append(el("li", { class: "branch" }, "⎇ forked into ",
        el("a", { onclick: () => { location.hash = `#/thread/${f.id}`; } }, f.name || f.id)));
    }
  }
  if (info.thread.forked_from) {
    timeline.append(el("li", { class: "origin" }, "⎇ forked from ",
      el("a", { onclick: () => { location.hash = `#/checkpoint/${info.thread.forked_from}`; } },
        `checkpoint ${short(info.thread.forked_from)}`),
      info.thread.parent_thread_id ? " of " : "",
      info.thread.parent_thread_id ? el("a", { onclick: () => { location.hash = `#/thread/${info.thread.parent_thread_id}`; } }, "its thread") : ""));
  }
  $("diff-button").disabled = state.selected.length !== 2;
  $("thread-view").hidden = false;
}

function select(id, on) {
  state.selected = state.selected.filter((x) => x !== id);
  if (on) state.selected.push(id);
  if (state.selected.length > 2) {
    const dropped = state.selected.shift();
    const box = document.querySelector(`.cp-row[data-id="${dropped}"] .cp-select`);
    if (box) box.checked = false;
  }
  $("diff-button").disabled = state.selected.length !== 2;
}

function orderByAge(ids) {
  const steps = Object.fromEntries(state.checkpoints.map((c) => [c.id, c.created_at]));
  return [...ids].sort((a, b) => (steps[a] < steps[b] ? -1 : 1));
}

// ---- one checkpoint ---------------------------------------------------------------------------
async function showCheckpoint(id) {
  const cp = await api(`/api/checkpoints/${encodeURIComponent(id)}`);
  state.checkpoint = cp;
  $("checkpoint-title").textContent = `Checkpoint ${short(cp.id)} · step ${cp.step}`;
  $("checkpoint-meta").textContent = `${cp.id} · ${cp.source} · ${cp.status || "-"} · ${when(cp.created_at)} · thread ` + cp.thread_id +
    (cp.workspace ? ` · files of ${cp.workspace.workspace} @ ${cp.workspace.commit.slice(0, 10)}` : "");
  $("restore-files").checked = !!cp.workspace;
  $("restore-files").disabled = !cp.workspace;
  const conv = $("conversation");
  conv.replaceChildren();
  const messages = Array.isArray(cp.state.messages) ? cp.state.messages : [];
  if (!messages.length) conv.append(el("li", { class: "meta" }, "No messages."));
  for (const m of messages) {
    const who = (m && (m.name || m.role)) || "?";
    const content = m && m.content !== undefined ? text(m.content) : text(m);
    const calls = m && Array.isArray(m.tool_calls) && m.tool_calls.length
      ? "\n→ " + m.tool_calls.map((c) => c.name || "tool").join(", ") : "";
    conv.append(el("li", { class: m && m.role === "user" ? "user" : "" }, el("span", { class: "who" }, who), content + calls));
  }
  const others = Object.fromEntries(Object.entries(cp.state).filter(([k]) => k !== "messages"));
  $("channels").textContent = JSON.stringify(others, null, 2);
  const arts = $("artifacts");
  arts.replaceChildren();
  const linked = cp.artifacts.map((a) => ({ ...a, note: "linked to this checkpoint" }));
  let scoped = [];
  try {
    scoped = (await api(`/api/artifacts/${encodeURIComponent(cp.thread_id)}`)).artifacts
      .map((a) => ({ scope: a.scope, key: a.key, version: a.version, note: `latest of the thread, ${a.size} bytes` }));
  } catch (e) { /* a thread id that is no valid scope has none */ }
  const all = linked.concat(scoped.filter((s) => !linked.some((l) => l.key === s.key && l.version === s.version)));
  if (!all.length) arts.append(el("li", { class: "meta" }, "None."));
  for (const a of all) {
    arts.append(el("li", {}, el("a", { href: "#", class: "download", onclick: (e) => { e.preventDefault(); download(a); } },
      `${a.key} (version ${a.version})`), " ", el("small", { class: "meta" }, a.note)));
  }
  $("checkpoint-view").hidden = false;
}

async function download(a) {
  const params = new URLSearchParams({ key: a.key, version: String(a.version) });
  const res = await api(`/api/artifacts/${encodeURIComponent(a.scope)}/content?${params}`, { raw: true });
  const url = URL.createObjectURL(await res.blob());
  const link = el("a", { href: url, download: a.key.split("/").pop() });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

function confirmWith(message) {
  return new Promise((resolve) => {
    const dialog = $("confirm-dialog");
    $("confirm-text").textContent = message;
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true });
    dialog.showModal();
  });
}

async function restore() {
  const cp = state.checkpoint;
  const files = $("restore-files").checked;
  const ok = await confirmWith(`Restore thread ${short(cp.thread_id)} to checkpoint ${short(cp.id)} (step ${cp.step})` +
    (files ? " and its workspace files" : "") + "? Nothing is deleted: the restore is a new checkpoint.");
  if (!ok) return;
  try {
    const done = await api(`/api/checkpoints/${encodeURIComponent(cp.id)}/restore`, { method: "POST", json: { workspace: files, dry_run: false } });
    const w = done.workspace;
    showBanner(`Restored: new head ${short(done.checkpoint.id)}` +
      (w ? ` · files: ${w.changed.length} changed, ${w.created.length} brought back, ${w.removed.length} removed` : ""), "info");
    state.keepBanner = true;
    location.hash = `#/thread/${cp.thread_id}`;
  } catch (e) {
    if (e.status === 409) {
      const run = e.problem.run_id ? ` Run ${e.problem.run_id} holds the thread; stop it or wait for it to finish.` : "";
      showBanner(`Refused: ${e.message.replace(/\.$/, "")}.${run}`);
    } else if (e.status !== 401) showBanner(e.message);
  }
}

async function fork() {
  const cp = state.checkpoint;
  if (!(await confirmWith(`Start a new thread from checkpoint ${short(cp.id)} (step ${cp.step})? The original thread is untouched.`))) return;
  try {
    const done = await api(`/api/checkpoints/${encodeURIComponent(cp.id)}/fork`, { method: "POST", json: {} });
    showBanner(`Forked into thread ${done.thread.name || done.thread.id}`, "info");
    state.keepBanner = true;
    await loadThreads();
    location.hash = `#/thread/${done.thread.id}`;
  } catch (e) {
    if (e.status !== 401) showBanner(e.message);
  }
}

// ---- diff, side by side -----------------------------------------------------------------------
async function showDiff(a, b) {
  const d = await api(`/api/checkpoints/${encodeURIComponent(a)}/diff/${encodeURIComponent(b)}?patch=true`);
  $("diff-title").textContent = `Checkpoint ${short(a)} → ${short(b)}`;
  const grid = $("diff-state");
  grid.replaceChildren();
  if (!d.changes.length) grid.append(el("div", { class: "path" }, "No state changes."));
  for (const c of d.changes) {
    grid.append(el("div", { class: "path" }, `${c.path} (${c.kind})`));
    grid.append(el("div", { class: "old" }, c.old === null ? "—" : text(c.old)));
    grid.append(el("div", { class: "new" }, c.new === null ? "—" : text(c.new)));
  }
  const files = $("diff-files");
  files.replaceChildren();
  if (d.files === null) files.append(el("p", { class: "meta" }, "Not compared: the two checkpoints have no snapshots of one workspace."));
  else if (!d.files.length) files.append(el("p", { class: "meta" }, "No file changed."));
  for (const f of d.files || []) {
    const box = el("div", { class: "file" }, el("div", { class: "file-name" }, `${f.path} (${f.status})`));
    const sxs = el("div", { class: "sxs" });
    const [left, right] = splitPatch(f.patch || "");
    sxs.append(el("div", { class: "old" }, left || "—"), el("div", { class: "new" }, right || "—"));
    box.append(sxs);
    files.append(box);
  }
  $("diff-view").hidden = false;
}

function splitPatch(patch) {
  const left = [], right = [];
  for (const line of patch.split("\n")) {
    if (line.startsWith("---") || line.startsWith("+++") || line.startsWith("diff ") || line.startsWith("index ")) continue;
    if (line.startsWith("@@")) { left.push(line); right.push(line); }
    else if (line.startsWith("-")) left.push(line.slice(1));
    else if (line.startsWith("+")) right.push(line.slice(1));
    else { left.push(line.slice(1)); right.push(line.slice(1)); }
  }
  return [left.join("\n").trim(), right.join("\n").trim()];
}

// ---- live updates (server-sent events read with fetch, so the token goes in a header) ----------
async function listen() {
  const status = $("live-status");
  for (;;) {
    try {
      const res = await api("/api/events", { raw: true });
      status.textContent = "live";
      status.className = "live on";
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          handle(buffer.slice(0, cut));
          buffer = buffer.slice(cut + 2);
        }
      }
    } catch (e) {
      if (e.status === 401) return;
    }
    status.textContent = "offline";
    status.className = "live off";
    await new Promise((r) => setTimeout(r, 2000));
  }
}

const refresh = debounce(async () => {
  try {
    await loadThreads();
    const parts = location.hash.replace(/^#\/?/, "").split("/");
    if (parts[0] === "thread" && state.thread && parts[1] === state.thread.id) await showThread(state.thread.id);
  } catch (e) { /* the next event tries again */ }
}, 300);

function handle(block) {
  let kind = "message", data = "";
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) kind = line.slice(6).trim();
    else if (line.startsWith("data:")) data += line.slice(5).trim();
  }
  if (!data) return;
  document.body.dataset.lastEvent = kind;
  refresh();
}

start();
