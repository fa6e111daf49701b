// lookalike web page, the duplicates view as a review: each file starts with what a dry-run resolve suggests; a person
// marks files keep / trash / not a duplicate and applies a group, or applies every suggestion, and undoes what this
// page did. Changes go through the service's review routes (the CLI's resolve, distinct, undo and decisions forget) as
// JSON with the X-Lookalike header, which the service asks of every change: a page of another site cannot send it.
// The cards are dupes.js's; app.js's helpers ($, el, api, setStatus) are used.
"use strict";

const review = {
  groups: [], // the groups shown (/api/duplicates)
  views: [], // per group: {node, summary, apply, note, cards: [{node, it, buttons, suggestion, keeper}]}
  plan: new Map(), // path -> what the dry run suggests: {action, keeper, reason, group}
  chosen: new Map(), // path -> the mark a person chose (otherwise the suggestion's)
  current: 0, // the current group
  selected: 0, // the selected file of the current group
  done: [], // what this page did, last last: {label, run, decisions}
  busy: false,
  loads: 0, // listings asked for
};

function change(url, body) {
  const headers = { "Content-Type": "application/json", "X-Lookalike": "1" };
  return api(url, { method: "POST", headers, body: JSON.stringify(body) });
}

function reviewStatus(text, error = false) {
  setStatus(text, error, "#review-status");
}

// --- marks ----------------------------------------------------------------------------------------------------------
function reviewable(g) {
  // resolve acts within the verified groups its plan covers; other groups (overlaps, similar) only take 'distinct'
  return g.items.some((it) => review.plan.has(it.path));
}

function markOf(it) {
  const chosen = review.chosen.get(it.path);
  if (chosen) return chosen;
  const planned = review.plan.get(it.path);
  return planned && planned.action !== "keep" ? "trash" : "keep";
}

function render() {
  review.groups.forEach((g, gi) => {
    const view = review.views[gi];
    const inPlan = reviewable(g);
    const counts = { keep: 0, trash: 0, distinct: 0 };
    view.cards.forEach(({ node, it, buttons, suggestion, keeper }, fi) => {
      const mark = markOf(it);
      counts[mark] += 1;
      node.dataset.mark = mark;
      for (const m of Object.keys(MARKS)) node.classList.toggle(`mark-${m}`, m === mark);
      for (const b of buttons) {
        b.setAttribute("aria-pressed", String(b.dataset.choice === mark));
        const distinctFromItself = b.dataset.choice === "distinct" && fi === 0;
        b.disabled = review.busy || distinctFromItself || (b.dataset.choice === "trash" && !inPlan);
      }
      const planned = review.plan.get(it.path);
      keeper.hidden = !planned || planned.keeper !== it.path;
      suggestion.textContent = planned ? `suggested: ${planned.action} — ${planned.reason}` : "";
    });
    const parts = [];
    if (counts.trash) parts.push(`${counts.trash} to trash`);
    if (counts.distinct) parts.push(`${counts.distinct} not a duplicate`);
    view.summary.textContent = parts.length ? parts.join(" · ") : "nothing marked";
    const nothingKept = counts.trash > 0 && counts.keep === 0;
    view.note.textContent = nothingKept
      ? "keep at least one file of the group"
      : inPlan || !review.plan.size
        ? ""
        : "resolve leaves this group alone (not whole copies); files can still be marked not a duplicate";
    view.apply.disabled = review.busy || nothingKept || (!counts.trash && !counts.distinct);
  });
  const suggested = [...review.plan.values()].filter((a) => a.action !== "keep").length;
  $("#apply-suggested").textContent = `Apply suggested keepers (${suggested} to trash)`;
  $("#apply-suggested").disabled = review.busy || suggested === 0;
  $("#undo").disabled = review.busy || review.done.length === 0;
  $("#undo").title = review.done.length ? `undo ${review.done[review.done.length - 1].label}` : "nothing to undo";
}

function setCurrent(gi, scroll = true) {
  if (!review.groups.length) return;
  const next = Math.min(Math.max(gi, 0), review.groups.length - 1);
  if (next !== review.current) review.selected = 0;
  review.current = next;
  review.selected = Math.min(review.selected, review.views[next].cards.length - 1);
  review.views.forEach((v, i) => v.node.classList.toggle("current", i === next));
  markSelected();
  if (scroll) review.views[next].node.scrollIntoView({ block: "nearest" });
}

function markSelected() {
  review.views.forEach((v, gi) =>
    v.cards.forEach((c, fi) => c.node.classList.toggle("selected", gi === review.current && fi === review.selected)),
  );
}

function select(gi, fi) {
  setCurrent(gi, false);
  const cards = review.views[review.current].cards;
  review.selected = Math.min(Math.max(fi, 0), cards.length - 1);
  markSelected();
  const node = cards[review.selected].node;
  node.focus({ preventScroll: true });
  node.scrollIntoView({ block: "nearest" });
}

function choose(mark) {
  const view = review.views[review.current];
  if (!view || review.busy) return;
  const { it } = view.cards[review.selected];
  const button = view.cards[review.selected].buttons.find((b) => b.dataset.choice === mark);
  if (button.disabled) {
    reviewStatus(mark === "distinct" ? "the representative cannot be marked apart from itself" : "resolve leaves this group alone", true);
    return;
  }
  review.chosen.set(it.path, mark);
  render();
}

// --- changes --------------------------------------------------------------------------------------------------------
const baseName = (path) => path.split("/").pop();

async function changing(work) {
  // one change at a time; the groups and suggestions are read again after it, whatever happened
  if (review.busy) return;
  review.busy = true;
  render();
  try {
    reviewStatus(await work());
  } catch (e) {
    reviewStatus(e.message, true);
  } finally {
    review.busy = false;
    await loadDupes();
  }
}

function movedText(result, wanted) {
  // what a run moved, and which of the files wanted were left where they are, with why
  const moved = result.actions.filter((a) => a.action !== "keep");
  const left = wanted
    .filter((p) => !moved.some((a) => a.path === p))
    .map((p) => {
      const planned = result.actions.find((a) => a.path === p);
      return `${baseName(p)}: ${planned ? planned.reason : "no longer in a verified duplicate group"}`;
    });
  const run = result.run === null ? "" : ` (run ${result.run})`;
  return `${moved.length} moved to the trash${run}` + (left.length ? `; left alone: ${left.join("; ")}` : "");
}

function applyGroup(gi) {
  const g = review.groups[gi];
  if (!g) return;
  const marks = g.items.map((it) => [it, markOf(it)]);
  const apart = marks.filter(([, m]) => m === "distinct").map(([it]) => it.path);
  const trash = marks.filter(([, m]) => m === "trash").map(([it]) => it.path);
  if (!apart.length && !trash.length) {
    reviewStatus(`group ${gi + 1}: nothing to apply; mark a file trash (t) or not a duplicate (d)`);
    return;
  }
  if (trash.length && !marks.some(([, m]) => m === "keep")) {
    reviewStatus(`group ${gi + 1}: keep at least one file of the group`, true);
    return;
  }
  return changing(async () => {
    const entry = { label: `group ${gi + 1}`, run: null, decisions: [] };
    const said = [];
    try {
      for (const path of apart) {
        // each apart from the representative only (one request per file: a list would part them from each other)
        const r = await change("/api/distinct", { paths: [g.items[0].path, path] });
        entry.decisions.push(...r.decisions);
      }
      if (apart.length) said.push(`${apart.length} marked not a duplicate of ${g.items[0].name}`);
      if (trash.length) {
        const chosen = marks.filter(([it, m]) => m !== "distinct" && review.plan.has(it.path));
        const choices = Object.fromEntries(chosen.map(([it, m]) => [it.path, m]));
        const r = await change("/api/resolve", { apply: true, choices });
        entry.run = r.run;
        said.unshift(movedText(r, trash));
      }
    } finally {
      if (entry.run !== null || entry.decisions.length) review.done.push(entry);
      for (const it of g.items) review.chosen.delete(it.path);
    }
    return `group ${gi + 1}: ${said.join("; ")}. Undo (u) puts it back.`;
  });
}

function applySuggested() {
  const choices = {};
  const groups = new Set();
  for (const a of review.plan.values()) {
    if (a.action === "keep") continue;
    choices[a.path] = a.action;
    groups.add(a.group);
  }
  const n = Object.keys(choices).length;
  if (!n) {
    reviewStatus("no file is suggested for the trash");
    return;
  }
  const plural = (k, word) => `${k} ${word}${k === 1 ? "" : "s"}`;
  const asked = `Move ${plural(n, "file")} of ${plural(groups.size, "group")} to the trash, as suggested? Undo puts them back.`;
  if (!confirm(asked)) return;
  return changing(async () => {
    const r = await change("/api/resolve", { apply: true, choices });
    if (r.run !== null) review.done.push({ label: "the suggested keepers", run: r.run, decisions: [] });
    for (const path of Object.keys(choices)) review.chosen.delete(path);
    return `suggested keepers: ${movedText(r, Object.keys(choices))}. Undo (u) puts them back.`;
  });
}

function undoLast() {
  const entry = review.done.pop();
  if (!entry) {
    reviewStatus("nothing to undo: this page has not changed anything yet");
    return;
  }
  return changing(async () => {
    const said = [];
    try {
      if (entry.run !== null) {
        const r = await change("/api/undo", { run: entry.run });
        entry.run = null;
        said.push(`${r.done.length} put back from the trash`);
        for (const s of r.skipped) said.push(`${baseName(s.path)} left: ${s.why}`);
      }
      if (entry.decisions.length) {
        const r = await change("/api/decisions/forget", { ids: entry.decisions });
        entry.decisions = [];
        said.push(`${r.forgotten} not-a-duplicate forgotten`);
      }
    } finally {
      if (entry.run !== null || entry.decisions.length) review.done.push(entry); // what failed can be tried again
    }
    return `undid ${entry.label}: ${said.join("; ")}`;
  });
}

// --- loading ----------------------------------------------------------------------------------------------------------
async function loadDupes() {
  const box = $("#dupes");
  box.dataset.plan = "loading";
  setStatus("finding duplicate groups…", false, "#dupes-status");
  const load = ++review.loads; // a later load (a tab click, a change) supersedes this one
  let counted = "";
  try {
    const body = await api("/api/duplicates");
    if (load !== review.loads) return;
    review.groups = body.groups;
    review.views = body.groups.map(dupeGroup);
    box.replaceChildren(...review.views.map((v) => v.node));
    const similar = body.similar_threshold === null || body.similar_threshold === undefined ? "" : `, similar images at ${body.similar_threshold}`;
    const n = body.groups.length;
    counted = `${n} ${n === 1 ? "group" : "groups"} (videos at ${body.video_threshold}${similar})`;
    setStatus(n ? `${counted} · finding what resolve suggests…` : counted, false, "#dupes-status");
    review.plan = new Map();
    setCurrent(review.current, false);
    render();
  } catch (e) {
    if (load !== review.loads) return;
    setStatus(e.message, true, "#dupes-status");
    box.dataset.plan = "ready";
    return;
  }
  if (!review.groups.length) {
    box.dataset.plan = "ready";
    return;
  }
  try {
    // then what resolve suggests for them (a dry run: nothing changes)
    const plan = await change("/api/resolve", { apply: false });
    if (load !== review.loads) return;
    review.plan = new Map(plan.actions.map((a) => [a.path, a]));
    render();
    const trash = plan.actions.filter((a) => a.action !== "keep").length;
    setStatus(`${counted} · ${trash} ${trash === 1 ? "file" : "files"} suggested for the trash`, false, "#dupes-status");
  } catch (e) {
    if (load !== review.loads) return;
    reviewStatus(`no suggestions: ${e.message}`, true);
  }
  box.dataset.plan = "ready";
}

// --- keyboard ---------------------------------------------------------------------------------------------------------
const KEYS = {
  n: () => setCurrent(review.current + 1),
  p: () => setCurrent(review.current - 1),
  ArrowRight: () => select(review.current, review.selected + 1),
  ArrowDown: () => select(review.current, review.selected + 1),
  ArrowLeft: () => select(review.current, review.selected - 1),
  ArrowUp: () => select(review.current, review.selected - 1),
  g: () => choose("keep"),
  t: () => choose("trash"),
  d: () => choose("distinct"),
  a: () => applyGroup(review.current),
  u: () => undoLast(),
  "?": () => {
    $("#help").hidden = !$("#help").hidden;
  },
};

function onKey(ev) {
  if ($("#view-dupes").hidden || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if (ev.target.closest && ev.target.closest("input, textarea, select, dialog")) return;
  const act = KEYS[ev.key];
  if (!act || (!review.groups.length && !["u", "?"].includes(ev.key))) return;
  ev.preventDefault();
  act();
}

document.addEventListener("keydown", onKey);
$("#apply-suggested").addEventListener("click", () => applySuggested());
$("#undo").addEventListener("click", () => undoLast());
$("#help-toggle").addEventListener("click", () => KEYS["?"]());
