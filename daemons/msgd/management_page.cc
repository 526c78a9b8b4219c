#include "daemons/msgd/management_page.h"

#include <string>

namespace xa::msg {
namespace {

// The page's structure. The ids are the script's (and the browser test's) handles.
constexpr const char* kPage = R"html(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>xa-msgd: messages</title>
<link rel="stylesheet" href="/ui/app.css">
<script src="/ui/app.js" defer></script>
</head>
<body>
<header>
  <h1>xa-msgd</h1>
  <form id="login">
    <label for="token">Operator token</label>
    <input id="token" type="password" autocomplete="off" spellcheck="false" size="44">
    <button id="connect" type="submit">Connect</button>
    <button id="refresh" type="button" disabled>Refresh</button>
  </form>
</header>
<p id="status" role="status" aria-live="polite"></p>
<main>
  <section>
    <h2>Messages by state</h2>
    <table id="counts"><thead><tr><th>state</th><th>live</th><th>dead</th>
      <th>oldest update</th></tr></thead><tbody></tbody></table>
  </section>
  <section>
    <h2 id="list-title">Messages</h2>
    <table id="list"><thead><tr><th>id</th><th>producer</th><th>type</th><th>queue</th>
      <th>resends</th><th>checks</th><th>updated</th><th>last error</th></tr></thead>
      <tbody></tbody></table>
    <button id="next-page" type="button" hidden>Next page</button>
  </section>
  <section id="message" hidden>
    <h2>Message <code id="message-id"></code></h2>
    <dl id="message-fields"></dl>
    <div id="actions">
      <button id="action-confirm" type="button" data-action="confirm">Confirm</button>
      <button id="action-resend" type="button" data-action="resend">Resend</button>
      <button id="action-revive" type="button" data-action="revive">Revive</button>
      <button id="action-kill" type="button" data-action="kill">Mark dead</button>
      <button id="action-delete" type="button" data-action="delete">Delete</button>
    </div>
    <h3>Body</h3>
    <pre id="message-body"></pre>
    <h3>History</h3>
    <table id="history"><thead><tr><th>when</th><th>what</th><th>detail</th></tr></thead>
      <tbody></tbody></table>
  </section>
  <section>
    <h2>Operator actions (audit)</h2>
    <table id="audit"><thead><tr><th>#</th><th>when</th><th>operator</th><th>action</th>
      <th>message</th><th>result</th></tr></thead><tbody></tbody></table>
  </section>
</main>
</body>
</html>
)html";

constexpr const char* kStyle = R"css(
body { font: 14px/1.4 system-ui, sans-serif; margin: 0 1.5em 2em; color: #1b1f23; }
header { display: flex; align-items: baseline; gap: 2em; border-bottom: 1px solid #ccd; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 1.5em; } h3 { font-size: 1em; }
form { display: flex; gap: .5em; align-items: baseline; }
table { border-collapse: collapse; min-width: 30em; }
th, td { border-bottom: 1px solid #e1e4e8; padding: .25em .8em .25em 0; text-align: left;
  vertical-align: top; }
td.number { text-align: right; }
button.link { background: none; border: none; color: #0550ae; cursor: pointer; padding: 0;
  font: inherit; text-decoration: underline; }
#status { min-height: 1.4em; } #status.error { color: #b31d28; font-weight: 600; }
pre { background: #f6f8fa; padding: .6em; max-width: 60em; overflow-x: auto;
  white-space: pre-wrap; word-break: break-all; }
dl { display: grid; grid-template-columns: max-content auto; gap: .1em 1em; }
dt { color: #57606a; } dd { margin: 0; }
#actions { display: flex; gap: .5em; }
.dead { color: #b31d28; font-weight: 600; }
)css";

// Every value from the service reaches the page through textContent or a text node, never as
// markup. The token stays in this tab's sessionStorage and goes only to this origin's API.
constexpr const char* kScript = R"js('use strict';
(function () {
  const byId = (id) => document.getElementById(id);
  const store = window.sessionStorage;
  let token = store.getItem('xa-msgd-token') || '';
  let listed = null;   // {status, dead, after_updated_ms, after_id}
  let shown = null;    // the id of the message shown

  function say(text, isError) {
    const status = byId('status');
    status.textContent = text;
    status.className = isError ? 'error' : '';
  }

  async function call(path, body) {
    const response = await fetch(path, {
      method: 'POST',
      headers: {'Authorization': 'Bearer ' + token, 'Content-Type': 'application/json'},
      body: JSON.stringify(body || {}),
      credentials: 'omit',
      cache: 'no-store',
    });
    let json = {};
    try { json = await response.json(); } catch (e) { json = {}; }
    if (!response.ok && response.status !== 409 && response.status !== 404) {
      throw new Error(path + ': ' + response.status + ' ' + (json.error || response.statusText));
    }
    json.httpStatus = response.status;
    return json;
  }

  function cell(row, text, className) {
    const td = row.insertCell();
    td.textContent = text === undefined || text === null ? '' : String(text);
    if (className) td.className = className;
    return td;
  }
  function linkCell(row, text, onClick) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'link';
    button.textContent = text;
    button.addEventListener('click', onClick);
    row.insertCell().appendChild(button);
    return button;
  }
  function clear(table) {
    const body = table.tBodies[0];
    while (body.rows.length) body.deleteRow(0);
    return body;
  }
  function age(ms) {
    if (ms === undefined || ms === null) return '';
    const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    if (s < 120) return s + ' s ago';
    if (s < 7200) return Math.round(s / 60) + ' min ago';
    if (s < 172800) return Math.round(s / 3600) + ' h ago';
    return Math.round(s / 86400) + ' d ago';
  }
  function when(ms) { return new Date(ms).toISOString().replace('T', ' ').replace('Z', ' UTC'); }

  async function showCounts() {
    const json = await call('/v1/admin/counts');
    const body = clear(byId('counts'));
    for (const one of json.counts || []) {
      const row = body.insertRow();
      row.dataset.status = one.status;
      cell(row, one.status);
      const live = linkCell(row, String(one.live), () => showList(one.status, false));
      live.id = 'count-' + one.status + '-live';
      const dead = linkCell(row, String(one.dead), () => showList(one.status, true));
      dead.id = 'count-' + one.status + '-dead';
      if (one.dead > 0) dead.classList.add('dead');
      cell(row, age(one.oldest_updated_ms));
    }
  }

  async function showList(status, dead, after) {
    listed = {status: status, dead: dead};
    const request = {status: status, dead: dead, limit: 50};
    if (after) Object.assign(request, after);
    const json = await call('/v1/admin/list', request);
    byId('list-title').textContent =
        'Messages ' + status + (dead ? ', dead' : '') + (after ? ' (next page)' : '');
    const body = clear(byId('list'));
    const messages = json.messages || [];
    for (const m of messages) {
      const row = body.insertRow();
      linkCell(row, m.id, () => showMessage(m.id)).dataset.id = m.id;
      cell(row, m.producer_id);
      cell(row, m.data_type);
      cell(row, m.queue);
      cell(row, m.resend_count, 'number');
      cell(row, m.check_count, 'number');
      cell(row, age(m.updated_ms));
      cell(row, m.last_error);
    }
    const next = byId('next-page');
    next.hidden = messages.length < 50;
    if (!next.hidden) {
      const last = messages[messages.length - 1];
      next.onclick = () => showList(status, dead,
                                    {after_updated_ms: last.updated_ms, after_id: last.id})
                               .catch((e) => say(e.message, true));
    }
  }

  async function showMessage(id) {
    const json = await call('/v1/admin/get', {id: id});
    if (json.httpStatus === 404) {
      byId('message').hidden = true;
      shown = null;
      say('message ' + id + ' no longer exists');
      return;
    }
    shown = id;
    byId('message').hidden = false;
    byId('message-id').textContent = id;
    const fields = byId('message-fields');
    fields.replaceChildren();
    const rows = [['status', json.status], ['dead', json.dead ? 'yes' : 'no'],
                  ['producer', json.producer_id], ['type', json.data_type],
                  ['queue', json.queue], ['resends', json.resend_count],
                  ['back-queries', json.check_count], ['created', when(json.created_ms)],
                  ['updated', when(json.updated_ms)], ['last error', json.last_error]];
    for (const [name, value] of rows) {
      const dt = document.createElement('dt');
      dt.textContent = name;
      const dd = document.createElement('dd');
      dd.textContent = value === undefined || value === null ? '' : String(value);
      dd.id = 'field-' + name.replace(/[^a-z]/g, '-');
      if (name === 'dead' && json.dead) dd.className = 'dead';
      fields.append(dt, dd);
    }
    byId('message-body').textContent = json.body;
    const history = clear(byId('history'));
    for (const event of json.history || []) {
      const row = history.insertRow();
      cell(row, when(event.at_ms));
      cell(row, event.kind);
      cell(row, event.detail);
    }
    const unconfirmed = json.status === 'pending' || json.status === 'parked';
    byId('action-confirm').disabled = !unconfirmed;
    byId('action-delete').disabled = !unconfirmed;
    byId('action-resend').disabled = unconfirmed;
    byId('action-revive').disabled = !json.dead;
    byId('action-kill').disabled = json.dead || json.status === 'done';
  }

  async function showAudit() {
    const json = await call('/v1/admin/audit', {limit: 50});
    const body = clear(byId('audit'));
    for (const entry of json.entries || []) {
      const row = body.insertRow();
      cell(row, entry.seq, 'number');
      cell(row, when(entry.at_ms));
      cell(row, entry.operator);
      cell(row, entry.action);
      cell(row, entry.id);
      cell(row, entry.result);
    }
  }

  async function refresh() {
    await showCounts();
    if (listed) await showList(listed.status, listed.dead);
    if (shown) await showMessage(shown);
    await showAudit();
  }

  async function act(action) {
    if (!shown) return;
    const id = shown;
    const json = await call('/v1/admin/' + action, {id: id});
    say(action + ' ' + id + ': ' + (json.result || json.error || json.httpStatus),
        json.httpStatus >= 400);
    await refresh();
  }

  document.addEventListener('DOMContentLoaded', () => {
    byId('token').value = token;
    byId('login').addEventListener('submit', (event) => {
      event.preventDefault();
      token = byId('token').value.trim();
      store.setItem('xa-msgd-token', token);
      byId('refresh').disabled = false;
      say('connecting');
      refresh().then(() => say('connected'), (e) => say(e.message, true));
    });
    byId('refresh').addEventListener('click', () => {
      refresh().then(() => say('refreshed'), (e) => say(e.message, true));
    });
    for (const button of document.querySelectorAll('#actions button')) {
      button.addEventListener('click', () => {
        act(button.dataset.action).catch((e) => say(e.message, true));
      });
    }
    if (token) {
      byId('refresh').disabled = false;
      refresh().catch((e) => say(e.message, true));
    }
  });
})();
)js";

}  // namespace

void AddManagementPage(http::HttpServerOptions& options) {
  options.routes["/ui"] = [] {
    return http::HttpResponse{200, "text/html; charset=utf-8", kPage};
  };
  options.routes["/ui/app.js"] = [] {
    return http::HttpResponse{200, "text/javascript; charset=utf-8", kScript};
  };
  options.routes["/ui/app.css"] = [] {
    return http::HttpResponse{200, "text/css; charset=utf-8", kStyle};
  };
  options.response_headers = {
      {"Content-Security-Policy",
       "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
       "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"},
      {"X-Content-Type-Options", "nosniff"},
      {"Referrer-Policy", "no-referrer"},
      {"Cache-Control", "no-store"},
  };
}

}  // namespace xa::msg
