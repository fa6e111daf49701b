// lookalike web page: search by dropped/pasted/chosen file, by text (CLIP models) or by a result; duplicates view.
// Plain DOM code, no build step. Every text from the server is set with textContent, never as HTML.
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

// --- duplicates -------------------------------------------------------------------------------------------------
// Each group is a representative (first) and members each verified against it. A member card says what it is to
// the representative (its relation), how sure (score, keypoint inliers) and where: images draw the matched box on
// the thumbnail, videos give the matched range on both sides. Boxes are in the file's pixels; the thumbnail keeps
// the file's aspect ratio, so a box placed in percent of the file's width/height (from /api/items/{id}) over the
// thumbnail's frame lands on the same content. Positions go through the CSSOM (the page policy forbids inline
// style attributes, not element.style).
const RELATIONS = {
  representative: "the copy every other file was checked against",
  identical: "the same bytes",
  resized: "the whole picture at another size or encoding",
  cropped: "a part of the representative (hover to see which)",
  rotated: "the picture rotated or flipped",
  edited: "the whole picture with colour, blur, text or other edits",
  contains: "holds the representative inside a larger picture (the box)",
  similar: "looks alike, not verified",
  copy: "a whole copy of the video",
  partial: "shares part of the footage",
};

const itemInfo = new Map(); // id -> Promise of /api/items/{id}

function sizeOf(id) {
  if (!itemInfo.has(id)) {
    const p = api(`/api/items/${id}`);
    p.catch(() => itemInfo.delete(id)); // retried next time
    itemInfo.set(id, p);
  }
  return itemInfo.get(id);
}

function placeBox(box, region, info) {
  const w = info.width;
  const h = info.height;
  if (!region || !w || !h) {
    box.hidden = true;
    return;
  }
  const pct = (v, of) => `${(100 * Math.min(Math.max(v, 0), of)) / of}%`;
  const [left, top, right, bottom] = region;
  box.style.left = pct(left, w);
  box.style.top = pct(top, h);
  box.style.width = pct(Math.max(right - left, 0), w);
  box.style.height = pct(Math.max(bottom - top, 0), h);
  box.hidden = false;
}

function relationText(it) {
  const parts = [];
  if (it.relation !== "representative") {
    parts.push(`score ${it.score.toFixed(3)}`);
    if (it.inliers !== null && it.inliers !== undefined) parts.push(`${it.inliers} inliers`);
    if (it.method) parts.push(it.method);
  }
  return parts.join(" · ");
}

function rangeText(it) {
  // videos: the matched footage in this file, and where the same footage is in the representative
  if (it.kind !== "video" || it.start === null || it.start === undefined) return [];
  const lines = [`this ${fmtTime(it.start)} – ${fmtTime(it.end)}`];
  if (it.rep_start !== null && it.rep_start !== undefined) {
    lines.push(`representative ${fmtTime(it.rep_start)} – ${fmtTime(it.rep_end)}`);
  }
  return lines;
}

function dupeCard(it, onOpen) {
  const img = el("img", { src: it.thumbnail, alt: it.name, loading: "lazy" });
  const box = el("span", { className: "region", hidden: true });
  const repBox = el("span", { className: "rep-region", hidden: true });
  const relation = el("span", { className: `relation rel-${it.relation}`, title: RELATIONS[it.relation] || "" }, it.relation);
  const facts = relationText(it);
  const ranges = rangeText(it);
  const node = el(
    "button",
    {
      className: "card dupe",
      type: "button",
      title: it.path,
      dataset: { id: it.id, kind: it.kind, relation: it.relation, start: it.start ?? "" },
    },
    el("span", { className: "thumb" }, el("span", { className: "frame" }, img, box, repBox)),
    el(
      "div",
      { className: "meta" },
      el("div", { className: "name" }, it.name, el("span", { className: "badge" }, it.kind)),
      el("div", { className: "why" }, relation),
      facts ? el("div", { className: "score" }, facts) : null,
      ...ranges.map((line) => el("div", { className: "range" }, line)),
    ),
  );
  node.addEventListener("click", () => onOpen(it));
  if (it.kind === "image" && it.region) {
    // drawn once the thumbnail is there (thumbnails load lazily: only the cards one sees ask for sizes)
    const draw = () =>
      sizeOf(it.id)
        .then((info) => placeBox(box, it.region, info))
        .catch(() => {});
    if (img.complete && img.naturalWidth) draw();
    else img.addEventListener("load", draw, { once: true });
  }
  return { node, repBox, img };
}

function dupeGroup(g, i) {
  const rep = g.items[0];
  const cards = g.items.map((it) => dupeCard(it, (hit) => showTab("search") || openHit(hit)));
  const repCard = cards[0];
  // hovering or focusing a member shows, on the representative, the part of it the member shows
  let shown = null; // the member whose part is shown (a late size answer must not show a member left already)
  g.items.slice(1).forEach((it, j) => {
    if (rep.kind !== "image" || !it.rep_region) return;
    const show = () => {
      shown = it;
      sizeOf(rep.id)
        .then((info) => {
          if (shown === it) placeBox(repCard.repBox, it.rep_region, info);
        })
        .catch(() => {});
    };
    const hide = () => {
      shown = null;
      repCard.repBox.hidden = true;
    };
    const node = cards[j + 1].node;
    node.addEventListener("mouseenter", show);
    node.addEventListener("focus", show);
    node.addEventListener("mouseleave", hide);
    node.addEventListener("blur", hide);
  });
  return el(
    "div",
    { className: `group kind-${g.kind}`, dataset: { score: g.score, kind: g.kind } },
    el(
      "h3",
      {},
      el("span", { className: "group-kind" }, g.kind),
      ` group ${i + 1} · ${g.items.length} files · weakest link ${g.score.toFixed(3)}`,
    ),
    el("div", { className: "grid" }, ...cards.map((c) => c.node)),
  );
}

async function loadDupes() {
  setStatus("finding duplicate groups…", false, "#dupes-status");
  try {
    const body = await api("/api/duplicates");
    $("#dupes").replaceChildren(...body.groups.map(dupeGroup));
    const similar = body.similar_threshold === null || body.similar_threshold === undefined ? "" : `, similar images at ${body.similar_threshold}`;
    const n = body.groups.length;
    setStatus(`${n} ${n === 1 ? "group" : "groups"} (videos at ${body.video_threshold}${similar})`, false, "#dupes-status");
  } catch (e) {
    setStatus(e.message, true, "#dupes-status");
  }
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
