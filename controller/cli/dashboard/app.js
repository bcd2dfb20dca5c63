// The Rollgate dashboard: two views (#/ the rollouts, #/r/NAMESPACE/NAME one rollout), fed by
// Server-Sent Events from the local `rollgate dashboard` process, which watches the API server
// with the user's own credentials. No framework, no network but this page's origin; every value
// from the cluster is set as text, never as markup.
"use strict";

const $ = (id) => document.getElementById(id);
let source = null;
let current = null; // {ns, name} on the detail view
let lastDetail = null;

function setConnection(text, cls) {
  const el = $("connection");
  el.textContent = text;
  el.className = "connection " + cls;
}

function phaseSpan(phase) {
  const s = document.createElement("span");
  s.className = "phase phase-" + phase;
  s.textContent = phase;
  return s;
}

function cell(row, label, content) {
  const td = document.createElement("td");
  td.dataset.label = label;
  if (content instanceof Node) td.appendChild(content);
  else td.textContent = content;
  row.appendChild(td);
  return td;
}

function renderList(data) {
  const err = $("list-error");
  err.hidden = !data.error;
  err.textContent = data.error || "";
  const body = document.querySelector("#rollouts tbody");
  body.replaceChildren();
  for (const r of data.rollouts) {
    const tr = document.createElement("tr");
    tr.dataset.rollout = r.namespace + "/" + r.name;
    cell(tr, "Namespace", r.namespace);
    const link = document.createElement("a");
    link.href = "#/r/" + encodeURIComponent(r.namespace) + "/" + encodeURIComponent(r.name);
    link.textContent = r.name;
    cell(tr, "Name", link);
    cell(tr, "Phase", phaseSpan(r.phase || "Pending")).className = "rollout-phase";
    cell(tr, "Revision", String(r.revision));
    const chips = document.createElement("ul");
    chips.className = "chips";
    for (const e of r.environments) {
      const li = document.createElement("li");
      li.className = "chip phase-" + e.phase;
      li.textContent = e.name + ": " + e.phase;
      chips.appendChild(li);
    }
    cell(tr, "Environments", chips);
    cell(tr, "Message", r.message).className = "message";
    body.appendChild(tr);
  }
  $("list-empty").hidden = !data.synced || data.rollouts.length > 0;
}

function renderDetail(d) {
  lastDetail = d;
  if (d.missing) {
    $("detail-phase").textContent = "";
    $("detail-message").textContent = d.synced ? "This rollout does not exist (or was deleted)." : "Loading…";
    $("tree").textContent = "";
    $("environments").replaceChildren();
    for (const id of ["promote", "abort", "retry"]) $(id).disabled = true;
    return;
  }
  $("detail-title").textContent = d.namespace + "/" + d.name;
  const phase = $("detail-phase");
  phase.className = "phase phase-" + (d.phase || "Pending");
  phase.textContent = d.phase || "Pending";
  $("detail-revision").textContent = "revision " + d.revision;
  $("detail-message").textContent = d.message;
  $("detail-waiting").textContent = d.waiting ? "Waiting for: " + d.waiting : "";
  const envs = $("environments");
  envs.replaceChildren();
  for (const e of d.environments) {
    const li = document.createElement("li");
    const name = document.createElement("strong");
    name.textContent = e.name + " ";
    li.append(name, phaseSpan(e.phase));
    if (e.message) li.append(" — " + e.message);
    envs.appendChild(li);
  }
  $("tree").textContent = d.tree.join("\n");
  $("promote").disabled = !d.actions.promote;
  $("abort").disabled = !d.actions.abort;
  $("retry").disabled = !d.actions.retry;
}

function connect(rolloutKey) {
  if (source) source.close();
  const url = rolloutKey ? "/api/events?rollout=" + encodeURIComponent(rolloutKey) : "/api/events";
  source = new EventSource(url);
  source.onopen = () => setConnection("live", "live");
  source.onerror = () => setConnection("reconnecting…", "down");
  source.addEventListener("list", (ev) => renderList(JSON.parse(ev.data)));
  source.addEventListener("rollout", (ev) => renderDetail(JSON.parse(ev.data)));
}

function route() {
  const m = location.hash.match(/^#\/r\/([^/]+)\/([^/]+)$/);
  $("action-result").textContent = "";
  if (m) {
    current = { ns: decodeURIComponent(m[1]), name: decodeURIComponent(m[2]) };
    lastDetail = null;
    $("list-view").hidden = true;
    $("detail-view").hidden = false;
    $("detail-title").textContent = current.ns + "/" + current.name;
    document.title = current.name + " · Rollgate";
    connect(current.ns + "/" + current.name);
  } else {
    current = null;
    $("list-view").hidden = false;
    $("detail-view").hidden = true;
    document.title = "Rollouts · Rollgate";
    connect("");
  }
  $("main").focus();
}

async function act(verb) {
  if (!current) return;
  const result = $("action-result");
  result.textContent = verb + "…";
  try {
    const res = await fetch("/api/rollouts/" + encodeURIComponent(current.ns) + "/" +
                            encodeURIComponent(current.name) + "/" + verb, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: "{}",
    });
    const body = await res.json();
    result.textContent = res.ok ? body.message : "Failed: " + body.error;
    result.className = res.ok ? "" : "error";
  } catch (e) {
    result.textContent = "Failed: the dashboard process cannot be reached";
    result.className = "error";
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("promote").addEventListener("click", () => act("promote"));
  $("retry").addEventListener("click", () => act("retry"));
  const dialog = $("confirm-abort");
  $("abort").addEventListener("click", () => {
    $("confirm-text").textContent = "The rollout " + current.ns + "/" + current.name +
      " stops; an environment with new images is rolled back to its previous images.";
    dialog.showModal();
    $("confirm-no").focus();
  });
  $("confirm-yes").addEventListener("click", () => { dialog.close(); act("abort"); });
  $("confirm-no").addEventListener("click", () => dialog.close());
  window.addEventListener("hashchange", route);
  route();
});
