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
<title>xa-msgd: messages and notifications</title>
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
  <section id="notifier">
    <h2>Notifications by state</h2>
    <p id="notifier-absent" hidden>This daemon runs no notifier: its configuration has no
      [notifier webhooks] section.</p>
    <div id="notifier-views">
    <table id="notification-counts"><thead><tr><th>state</th><th>notifications</th></tr></thead>
      <tbody></tbody></table>
    <h2 id="notification-list-title">Notifications</h2>
    <table id="notification-list"><thead><tr><th>id</th><th>endpoint</th><th>event</th>
      <th>state</th><th>attempts</th><th>created</th><th>next attempt</th><th>last HTTP</th>
      <th>last error</th></tr></thead><tbody></tbody></table>
    <button id="notification-next-page" type="button" hidden>Next page</button>
    <section id="notification" hidden>
      <h2>Notification <code id="notification-id"></code></h2>
      <dl id="notification-fields"></dl>
      <div><button id="notification-resend" type="button">Resend</button></div>
      <h3>Body</h3>
      <pre id="notification-body"></pre>
      <h3>Attempts</h3>
      <table id="attempts"><thead><tr><th>#</th><th>started</th><th>latency</th><th>HTTP</th>
        <th>verdict</th><th>answer</th><th>error</th></tr></thead><tbody></tbody></table>
    </section>
    <h2>Endpoints</h2>
    <table id="endpoints"><thead><tr><th>id</th><th>URL</th><th>enabled</th><th>ladder</th>
      <th>max in flight</th><th>in flight</th><th>breaker</th><th>failures in a row</th></tr>
      </thead><tbody></tbody></table>
    <button id="endpoints-next-page" type="button" hidden>Next endpoints</button>
    </div>
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
.dead, .bad { color: #b31d28; font-weight: 600; }
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
  let notificationsListed = null;  // the status listed
  let notificationShown = null;    // the id of the notification shown

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
  function duration(ms) {
    const s = Math.round(ms / 1000);
    if (s < 120) return s + ' s';
    if (s < 7200) return Math.round(s / 60) + ' min';
    return Math.round(s / 3600) + ' h';
  }
  function fields(dl, rows, idPrefix) {
    dl.replaceChildren();
    for (const [name, value, className] of rows) {
      const dt = document.createElement('dt');
      dt.textContent = name;
      const dd = document.createElement('dd');
      dd.textContent = value === undefined || value === null ? '' : String(value);
      dd.id = idPrefix + name.toLowerCase().replace(/[^a-z]/g, '-');
      if (className) dd.className = className;
      dl.append(dt, dd);
    }
  }

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
    fields(byId('message-fields'),
           [['status', json.status], ['dead', json.dead ? 'yes' : 'no', json.dead ? 'dead' : ''],
            ['producer', json.producer_id], ['type', json.data_type],
            ['queue', json.queue], ['resends', json.resend_count],
            ['back-queries', json.check_count], ['created', when(json.created_ms)],
            ['updated', when(json.updated_ms)], ['last error', json.last_error]],
           'field-');
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

  // The notifier's views. A daemon without a notifier has none of its routes (404): the part
  // says so and the rest of the page works as before. The endpoints' answers carry the number
  // of their secrets, never a secret, and the page shows not even that number.
  const notificationStates = ['pending', 'succeeded', 'failed'];

  async function showNotifier() {
    const json = await call('/v1/notifications/counts');
    const absent = json.httpStatus === 404;
    byId('notifier-absent').hidden = !absent;
    byId('notifier-views').hidden = absent;
    if (absent) return;
    const body = clear(byId('notification-counts'));
    const counts = json.counts || {};
    for (const state of notificationStates) {
      const row = body.insertRow();
      row.dataset.status = state;
      cell(row, state);
      const count = counts[state] || 0;
      const link = linkCell(row, String(count), () => showNotifications(state));
      link.id = 'notification-count-' + state;
      if (state === 'failed' && count > 0) link.classList.add('bad');
    }
    if (notificationsListed) await showNotifications(notificationsListed);
    if (notificationShown) await showNotification(notificationShown);
    await showEndpoints();
  }

  async function showNotifications(status, after) {
    notificationsListed = status;
    const request = {status: status, limit: 50};
    if (after) Object.assign(request, after);
    const json = await call('/v1/notifications/list', request);
    byId('notification-list-title').textContent =
        'Notifications ' + status + (after ? ' (next page)' : '');
    const body = clear(byId('notification-list'));
    for (const n of json.notifications || []) {
      const row = body.insertRow();
      linkCell(row, n.id, () => showNotification(n.id)).dataset.id = n.id;
      cell(row, n.endpoint);
      cell(row, n.event_type);
      cell(row, n.status, n.status === 'failed' ? 'bad' : '');
      cell(row, n.attempts, 'number');
      cell(row, age(n.created_ms));
      cell(row, n.status === 'pending' ? when(n.next_attempt_ms) : '');
      cell(row, n.last_http_status || '', 'number');
      cell(row, n.last_error);
    }
    const next = byId('notification-next-page');
    next.hidden = !json.next;
    if (json.next) {
      const cursor = json.next;
      next.onclick = () => showNotifications(status, cursor).catch((e) => say(e.message, true));
    }
  }

  async function showNotification(id) {
    const json = await call('/v1/notifications/get', {id: id, attempts: true});
    if (json.httpStatus === 404) {
      byId('notification').hidden = true;
      notificationShown = null;
      say('notification ' + id + ' no longer exists');
      return;
    }
    notificationShown = id;
    byId('notification').hidden = false;
    byId('notification-id').textContent = id;
    const pending = json.status === 'pending';
    fields(byId('notification-fields'),
           [['status', json.status, json.status === 'failed' ? 'bad' : ''],
            ['endpoint', json.endpoint], ['event', json.event_type],
            ['attempts', json.attempts], ['created', when(json.created_ms)],
            ['updated', when(json.updated_ms)],
            ['next attempt', pending ? when(json.next_attempt_ms) : ''],
            ['last HTTP status', json.last_http_status || ''], ['last error', json.last_error]],
           'notification-field-');
    byId('notification-body').textContent = json.body;
    const attempts = clear(byId('attempts'));
    for (const a of json.attempt_history || []) {
      const row = attempts.insertRow();
      cell(row, a.number, 'number');
      cell(row, when(a.started_ms));
      cell(row, a.latency_ms + ' ms', 'number');
      cell(row, a.http_status || 'none', 'number');
      cell(row, a.verdict, a.verdict === 'delivered' ? '' : 'bad');
      cell(row, a.excerpt);
      cell(row, a.error);
    }
    // A pending notification is left to its schedule (a resend answers "already").
    byId('notification-resend').disabled = pending;
  }

  async function showEndpoints(afterId) {
    const request = {limit: 100};
    if (afterId) request.after_id = afterId;
    const json = await call('/v1/endpoints/list', request);
    const body = clear(byId('endpoints'));
    const endpoints = json.endpoints || [];
    for (const e of endpoints) {
      const row = body.insertRow();
      row.dataset.id = e.id;
      const health = e.health || {};
      const ladder = e.ladder_ms || [];
      cell(row, e.id);
      cell(row, e.url);
      cell(row, e.enabled ? 'yes' : 'no: ' + e.disabled_reason,
           e.enabled ? 'enabled' : 'enabled bad');
      cell(row, ladder.length + ' steps, ' + duration(ladder.reduce((sum, ms) => sum + ms, 0)));
      cell(row, e.max_in_flight, 'number');
      cell(row, health.in_flight, 'number in-flight');
      cell(row, health.breaker_open ? 'open' : 'closed',
           health.breaker_open ? 'breaker bad' : 'breaker');
      cell(row, health.consecutive_failures, 'number failures');
    }
    const next = byId('endpoints-next-page');
    next.hidden = endpoints.length < 100;
    if (!next.hidden) {
      const last = endpoints[endpoints.length - 1].id;
      next.onclick = () => showEndpoints(last).catch((e) => say(e.message, true));
    }
  }

  async function resendNotification() {
    if (!notificationShown) return;
    const id = notificationShown;
    const json = await call('/v1/notifications/resend', {id: id});
    await refresh();  // then say what happened: the page shows its effect when it says so
    say('resend notification ' + id + ': ' + (json.result || json.error || json.httpStatus),
        json.httpStatus >= 400);
  }

  async function refresh() {
    await showCounts();
    if (listed) await showList(listed.status, listed.dead);
    if (shown) await showMessage(shown);
    await showAudit();
    await showNotifier();
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
    byId('notification-resend').addEventListener('click', () => {
      resendNotification().catch((e) => say(e.message, true));
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
