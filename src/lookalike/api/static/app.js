// lookalike web page: search by dropped/pasted/chosen file, by text (CLIP models) or by a result; the duplicates
// view is review.js. Plain DOM code, no build step. Every text from the server is set with textContent, never as HTML.
"use strict";

const $ = (sel) => document.querySelector(sel);
const K = 24;

function fmtTime(s) {
  if (s === null || s === undefined) return "";
  const m = Math.floor(s / 60);
  const sec = (s - 60 * m).toFixed(1).padStart(4, "0");
  return m ? `${m}:${sec}` : `${(+s).toFixed(1)} s`;
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "dataset") Object.assign(node.dataset, v);
    else if (k in node) node[k] = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

function setStatus(text, error = false, target = "#status") {
  const s = $(target);
  s.textContent = text;
  s.classList.toggle("error", error);
}

// --- the API, with the key dialog on 401 ----------------------------------------------------------------------
async function askForKey() {
  const dialog = $("#key-dialog");
  $("#key-error").textContent = "";
  dialog.showModal();
  return new Promise((resolve) => {
    $("#key-form").onsubmit = async (ev) => {
      ev.preventDefault();
      const r = await fetch("/api/session", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ key: $("#key").value }),
      });
      if (r.ok) {
        dialog.close();
        resolve();
      } else {
        $("#key-error").textContent = "That key was not accepted.";
      }
    };
  });
}

async function api(url, options = {}) {
  for (;;) {
    const r = await fetch(url, options);
    if (r.status === 401) {
      await askForKey();
      continue;
    }
    let body = null;
    try {
      body = await r.json();
    } catch (_) {
      /* not JSON */
    }
    if (!r.ok) {
      const detail = body && body.detail ? (typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail)) : r.statusText;
      const err = new Error(`${r.status}: ${detail}`);
      err.status = r.status;
      throw err;
    }
    return body;
  }
}

// --- results ---------------------------------------------------------------------------------------------------
function card(hit, onOpen) {
  const range = hit.start !== null && hit.start !== undefined ? `matched ${fmtTime(hit.start)} – ${fmtTime(hit.end)}` : "";
  const node = el(
    "button",
    { className: "card", type: "button", title: hit.path, dataset: { id: hit.id, kind: hit.kind, start: hit.start ?? "" } },
    el("img", { src: hit.thumbnail, alt: hit.name, loading: "lazy" }),
    el(
      "div",
      { className: "meta" },
      el("div", { className: "name" }, hit.name, el("span", { className: "badge" }, hit.kind)),
      hit.score !== undefined ? el("div", { className: "score" }, `score ${hit.score.toFixed(3)}`) : null,
      range ? el("div", { className: "range" }, range) : null,
    ),
  );
  node.addEventListener("click", () => onOpen(hit));
  return node;
}

function showResults(response) {
  const grid = $("#results");
  grid.replaceChildren(...response.hits.map((h) => card(h, openHit)));
  setStatus(response.hits.length ? `${response.hits.length} results for ${response.query}` : `nothing similar to ${response.query}`);
}

function playFrom(hit) {
  const box = $("#player-box");
  const player = $("#player");
  box.hidden = false;
  const info = $("#player-info");
  info.replaceChildren(
    el("div", { className: "name" }, hit.name),
    el("div", {}, `matched ${fmtTime(hit.start)} – ${fmtTime(hit.end)}`),
    hit.query_start !== null && hit.query_start !== undefined
      ? el("div", {}, `of the query ${fmtTime(hit.query_start)} – ${fmtTime(hit.query_end)}`)
      : null,
    el("button", { type: "button", onclick: () => searchSimilar(hit) }, "Find similar to this"),
  );
  const start = hit.start || 0;
  const begin = () => {
    player.currentTime = start;
    player.play().catch((e) => setStatus(`cannot play ${hit.name}: ${e.message}`, true));
  };
  player.dataset.start = String(start);
  if (player.getAttribute("src") === hit.file && player.readyState >= 1) {
    begin();
  } else {
    player.addEventListener("loadedmetadata", begin, { once: true });
    player.src = hit.file;
  }
  box.scrollIntoView({ block: "nearest" });
}

function openHit(hit) {
  if (hit.kind === "video") playFrom(hit);
  else searchSimilar(hit);
}

async function run(label, request) {
  setStatus(`searching ${label}…`);
  $("#results").replaceChildren();
  try {
    showResults(await request());
  } catch (e) {
    setStatus(e.message, true);
  }
}

function searchSimilar(hit) {
  $("#query").replaceChildren(el("img", { src: hit.thumbnail, alt: hit.name }), el("span", {}, `similar to ${hit.name}`));
  return run(hit.name, () => api(`/api/search/similar/${hit.id}?k=${K}`));
}

function searchFile(file) {
  const preview = file.type.startsWith("video/") ? el("video", { src: URL.createObjectURL(file), muted: true }) : el("img", { src: URL.createObjectURL(file), alt: file.name });
  $("#query").replaceChildren(preview, el("span", {}, file.name || "pasted image"));
  $("#player-box").hidden = true;
  const form = new FormData();
  form.append("file", file, file.name || "pasted");
  return run(file.name || "pasted image", () => api(`/api/search/upload?k=${K}`, { method: "POST", body: form }));
}

function showTab(view) {
  for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.dataset.view === view);
  $("#view-search").hidden = view !== "search";
  $("#view-dupes").hidden = view !== "dupes";
  if (view === "dupes") loadDupes();
}

// --- wiring -----------------------------------------------------------------------------------------------------
function wire() {
  const drop = $("#drop");
  drop.addEventListener("dragover", (ev) => {
    ev.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    drop.classList.remove("over");
    const file = ev.dataTransfer.files[0];
    if (file) searchFile(file);
  });
  $("#file").addEventListener("change", (ev) => {
    const file = ev.target.files[0];
    if (file) searchFile(file);
    ev.target.value = "";
  });
  document.addEventListener("paste", (ev) => {
    const file = [...ev.clipboardData.files][0];
    if (file) {
      ev.preventDefault();
      searchFile(file);
    }
  });
  $("#text-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = $("#text").value.trim();
    if (!text) return;
    $("#query").replaceChildren(el("span", {}, `“${text}”`));
    run(`“${text}”`, () => api("/api/search/text", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ text, k: K }) }));
  });
  for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => showTab(tab.dataset.view));
}

async function start() {
  wire();
  try {
    const info = await api("/api/info");
    $("#library").textContent = `${info.items} files · ${info.model}`;
    $("#text-form").hidden = !info.text_search;
  } catch (e) {
    setStatus(e.message, true);
  }
  document.body.dataset.ready = "true";
}

start();
