"""Interactive docs: one self-contained page that reads the OpenAPI document and tries calls.

No script or style comes from elsewhere (the page works on a machine with no
internet): it fetches ``/api/v1/openapi.json`` from this server, lists every
operation with its parameters and answers, and sends a call with the bearer
token typed into the page (kept in the page's memory only, never stored).
"""

DOCS_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>SyncFlow operations API</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 0; color: #1d2330; background: #f6f7f9; }
header { background: #1d2330; color: #fff; padding: 12px 20px; display: flex; gap: 16px;
         align-items: center; flex-wrap: wrap; }
header h1 { font-size: 18px; margin: 0; }
header input { width: 28em; padding: 4px 6px; }
main { max-width: 1100px; margin: 0 auto; padding: 12px 20px 40px; }
h2 { border-bottom: 1px solid #ccd; padding-bottom: 4px; margin-top: 28px; }
details { background: #fff; border: 1px solid #d6d9e0; border-radius: 6px; margin: 6px 0; }
summary { cursor: pointer; padding: 8px 10px; }
.m { display: inline-block; width: 4.5em; font-weight: 700; font-family: monospace; }
.get { color: #0a6; } .post { color: #06c; } .put { color: #a60; } .delete { color: #c22; }
.p { font-family: monospace; } .role { color: #778; font-size: 12px; margin-left: 8px; }
.op { padding: 0 14px 12px; } .op table { border-collapse: collapse; margin: 6px 0; }
.op td, .op th { border: 1px solid #e0e3ea; padding: 3px 8px; text-align: left; }
textarea { width: 100%; min-height: 90px; font-family: monospace; }
pre { background: #0f1420; color: #d7e0f0; padding: 10px; overflow: auto; max-height: 420px; }
button { padding: 4px 12px; }
</style>
</head>
<body>
<header>
  <h1>SyncFlow operations API</h1>
  <label>Bearer token <input id="token" type="password" autocomplete="off"
    placeholder="a read or operator token, or a JWT"></label>
  <a href="/api/v1/openapi.json" style="color:#9cf">openapi.json</a>
</header>
<main id="main"><p>Loading the OpenAPI document…</p></main>
<script>
"use strict";
const main = document.getElementById("main");
function el(tag, attrs, ...kids) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const kid of kids) node.append(kid);
  return node;
}
function schemaName(s) {
  if (!s) return "";
  if (s.$ref) return s.$ref.split("/").pop();
  if (s.enum) return s.enum.join(" | ");
  if (s.anyOf) return s.anyOf.map(schemaName).join(" | ");
  return s.type || "";
}
async function send(method, path, op, form, out) {
  let url = path;
  const query = new URLSearchParams();
  for (const p of op.parameters || []) {
    const value = form.querySelector(`[name="${p.in}:${p.name}"]`).value;
    if (!value) continue;
    if (p.in === "path") url = url.replace(`{${p.name}}`, encodeURIComponent(value));
    else query.append(p.name, value);
  }
  if ([...query].length) url += "?" + query;
  const headers = {};
  const token = document.getElementById("token").value.trim();
  if (token) headers["Authorization"] = "Bearer " + token;
  const init = { method: method.toUpperCase(), headers };
  const body = form.querySelector("textarea");
  if (body && body.value.trim()) {
    headers["Content-Type"] = body.dataset.type;
    init.body = body.value;
  }
  out.textContent = `${init.method} ${url} …`;
  try {
    const answer = await fetch(url, init);
    const text = await answer.text();
    let shown = text;
    try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* not JSON */ }
    out.textContent = `${answer.status} ${answer.statusText}\\n\\n${shown}`;
  } catch (e) {
    out.textContent = "request failed: " + e;
  }
}
function operation(path, method, op) {
  const form = el("form", {});
  const rows = (op.parameters || []).map(p => el("tr", {},
    el("td", {}, `${p.name}${p.required ? " *" : ""}`), el("td", {}, p.in),
    el("td", {}, schemaName(p.schema)), el("td", {}, el("input", { name: `${p.in}:${p.name}` })),
    el("td", {}, p.description || "")));
  if (rows.length) form.append(el("table", {}, el("tr", {}, el("th", {}, "parameter"),
    el("th", {}, "in"), el("th", {}, "type"), el("th", {}, "value"), el("th", {}, "")), ...rows));
  if (op.requestBody) {
    const types = Object.keys(op.requestBody.content);
    const schema = op.requestBody.content[types[0]].schema;
    form.append(el("div", {}, `body (${types.join(" or ")}): ${schemaName(schema)}`));
    const area = el("textarea", {});
    area.dataset.type = types.includes("application/json") && types.length === 1
      ? "application/json" : types[0];
    form.append(area);
  }
  const out = el("pre", {}, "");
  const button = el("button", { type: "submit" }, "Send");
  form.append(button);
  form.addEventListener("submit", ev => {
    ev.preventDefault();
    send(method, path, op, form, out);
  });
  const answers = Object.entries(op.responses || {}).map(([code, r]) => {
    const media = r.content ? Object.keys(r.content)[0] : "";
    const schema = media ? schemaName(r.content[media].schema) : "";
    return el("tr", {}, el("td", {}, code), el("td", {}, r.description || ""),
      el("td", {}, `${media} ${schema}`));
  });
  const role = op["x-syncflow-role"] ? `needs ${op["x-syncflow-role"]}` : "public";
  return el("details", {},
    el("summary", {}, el("span", { class: "m " + method }, method.toUpperCase()),
      el("span", { class: "p" }, path), " — " + (op.summary || ""),
      el("span", { class: "role" }, role)),
    el("div", { class: "op" }, el("p", {}, op.description || ""), form,
      el("table", {}, el("tr", {}, el("th", {}, "status"), el("th", {}, "meaning"),
        el("th", {}, "body")), ...answers), out));
}
async function load() {
  const doc = await (await fetch("/api/v1/openapi.json")).json();
  main.replaceChildren(el("p", {}, doc.info.description));
  for (const tag of doc.tags) {
    main.append(el("h2", {}, tag.name), el("p", {}, tag.description));
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        if ((op.tags || [])[0] === tag.name) main.append(operation(path, method, op));
      }
    }
  }
}
load().catch(e => { main.textContent = "could not load the OpenAPI document: " + e; });
</script>
</body>
</html>
"""
