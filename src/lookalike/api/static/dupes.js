// lookalike web page, the duplicates view's cards: each file of a group side by side, the matched region drawn, and
// what the catalog knows of it (resolution, size, date, path). review.js holds the review's state and actions; this
// file calls its select, choose, setCurrent and applyGroup, and app.js's helpers ($, el, api, fmtTime, showTab, openHit).
"use strict";

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
  rotated: "the picture rotated",
  flipped: "the picture mirrored (perhaps also rotated)",
  framed: "the whole picture with plain borders added (letterbox, mat, canvas)",
  edited: "the whole picture with colour, blur, text or other edits",
  contains: "holds the representative inside a larger picture (the box)",
  hardlink: "the same file as another one of the group, at another path",
  similar: "looks alike, not verified",
  copy: "a whole copy of the video",
  partial: "shares part of the footage",
};
const MARKS = { keep: "Keep", trash: "Trash", distinct: "Not a duplicate" }; // the review's choices per file

// --- what each file is --------------------------------------------------------------------------------------------
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

function fmtBytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

function fmtDate(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

function factsText(info) {
  // resolution, length, size, and the date: when it was taken where the catalog knows it, else its modification time
  const parts = [];
  if (info.width && info.height) parts.push(`${info.width}×${info.height}`);
  if (info.duration) parts.push(fmtTime(info.duration));
  parts.push(fmtBytes(info.size));
  if (info.taken_at) parts.push(`taken ${fmtDate(info.taken_at)}`);
  else if (info.modified) parts.push(`modified ${fmtDate(info.modified)}`);
  return parts.join(" · ");
}

function relationText(it) {
  const parts = [];
  if (it.relation !== "representative") {
    parts.push(`score ${it.score.toFixed(3)}`);
    // a pair too smooth for keypoints is verified without them: its inlier count (0) says nothing
    if (it.method === "smooth") parts.push("verified without keypoints");
    else if (it.inliers !== null && it.inliers !== undefined) parts.push(`${it.inliers} inliers`);
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

// --- cards and groups ---------------------------------------------------------------------------------------------
function dupeCard(it, gi, fi) {
  const img = el("img", { src: it.thumbnail, alt: it.name, loading: "lazy" });
  const box = el("span", { className: "region", hidden: true });
  const repBox = el("span", { className: "rep-region", hidden: true });
  const relation = el("span", { className: `relation rel-${it.relation}`, title: RELATIONS[it.relation] || "" }, it.relation);
  const keeper = el("span", { className: "keeper", hidden: true, title: "the file resolve suggests keeping" }, "keeper");
  const facts = el("div", { className: "facts" }, "");
  const suggestion = el("div", { className: "suggestion" });
  const similar = el("button", { type: "button", className: "similar", title: "Search for files like this one" }, "similar");
  similar.addEventListener("click", (ev) => {
    ev.stopPropagation();
    showTab("search");
    openHit(it);
  });
  const buttons = Object.entries(MARKS).map(([mark, label]) => {
    const b = el("button", { type: "button", className: `choice choice-${mark}`, dataset: { choice: mark } }, label);
    b.addEventListener("click", (ev) => {
      ev.stopPropagation();
      select(gi, fi);
      choose(mark);
    });
    return b;
  });
  const node = el(
    "div",
    {
      className: "card dupe",
      tabIndex: -1,
      title: it.path,
      dataset: { id: it.id, kind: it.kind, relation: it.relation, start: it.start ?? "", path: it.path },
    },
    el("span", { className: "thumb" }, el("span", { className: "frame" }, img, box, repBox)),
    el(
      "div",
      { className: "meta" },
      el("div", { className: "name" }, it.name, el("span", { className: "badge" }, it.kind)),
      el("div", { className: "why" }, relation, keeper, similar),
      relationText(it) ? el("div", { className: "score" }, relationText(it)) : null,
      ...rangeText(it).map((line) => el("div", { className: "range" }, line)),
      facts,
      el("div", { className: "path" }, it.path),
      suggestion,
    ),
    el("div", { className: "choices", role: "group", "aria-label": `review ${it.name}` }, ...buttons),
  );
  node.addEventListener("click", () => select(gi, fi));
  // metadata and the box once the thumbnail is there (thumbnails load lazily: only the cards one sees ask)
  const draw = () =>
    sizeOf(it.id)
      .then((info) => {
        facts.textContent = factsText(info);
        if (it.kind === "image" && it.region) placeBox(box, it.region, info);
      })
      .catch(() => {});
  if (img.complete && img.naturalWidth) draw();
  else img.addEventListener("load", draw, { once: true });
  return { node, it, repBox, buttons, suggestion, keeper };
}

function showPartsOnHover(g, cards) {
  // hovering or focusing a member shows, on the representative, the part of it the member shows
  const rep = g.items[0];
  let shown = null; // the member whose part is shown (a late size answer must not show a member left already)
  g.items.slice(1).forEach((it, j) => {
    if (rep.kind !== "image" || !it.rep_region) return;
    const show = () => {
      shown = it;
      sizeOf(rep.id)
        .then((info) => {
          if (shown === it) placeBox(cards[0].repBox, it.rep_region, info);
        })
        .catch(() => {});
    };
    const hide = () => {
      shown = null;
      cards[0].repBox.hidden = true;
    };
    const node = cards[j + 1].node;
    node.addEventListener("mouseenter", show);
    node.addEventListener("focus", show);
    node.addEventListener("mouseleave", hide);
    node.addEventListener("blur", hide);
  });
}

function dupeGroup(g, gi) {
  const cards = g.items.map((it, fi) => dupeCard(it, gi, fi));
  showPartsOnHover(g, cards);
  const summary = el("span", { className: "summary" });
  const note = el("span", { className: "note" });
  const apply = el("button", { type: "button", className: "apply", disabled: true }, "Apply");
  apply.addEventListener("click", (ev) => {
    ev.stopPropagation();
    applyGroup(gi);
  });
  const node = el(
    "div",
    { className: `group kind-${g.kind}`, dataset: { score: g.score, kind: g.kind, index: gi } },
    el(
      "h3",
      {},
      el("span", { className: "group-kind" }, g.kind),
      ` group ${gi + 1} · ${g.items.length} files · weakest link ${g.score.toFixed(3)}`,
    ),
    el("div", { className: "grid" }, ...cards.map((c) => c.node)),
    el("div", { className: "group-foot" }, apply, summary, note),
  );
  node.addEventListener("click", () => setCurrent(gi));
  return { node, cards, summary, apply, note };
}

