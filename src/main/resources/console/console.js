'use strict';
// The kfold console. It reads kfold's JSON API from the browser with the caller's credentials:
// the page holds no data of its own. Whatever the API answers goes into the page as text
// (textContent, text nodes), never as markup.

const TOKEN = 'kfold.token';
const REFRESH_MS = 3000;
const $ = id => document.getElementById(id);
const enc = encodeURIComponent;

/** An element with properties (class, data-*, onclick, or any DOM property) and children as nodes or text. */
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (name === 'class') {
      node.className = value;
    } else if (name.startsWith('data-')) {
      node.setAttribute(name, value);
    } else if (name === 'onclick') {
      node.addEventListener('click', value);
    } else {
      node[name] = value;
    }
  }
  for (const child of children.flat()) {
    node.append(child instanceof Node ? child : String(child ?? ''));
  }
  return node;
}

function json(value, indent) {
  return JSON.stringify(value, null, indent ? 2 : 0);
}

/** A failed call: the status and the problem's title and detail. */
class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** The API answered 401: the key prompt is shown, and the caller stops. */
class Unauthorized extends Error {}

function authHeaders(headers) {
  const token = sessionStorage.getItem(TOKEN);
  if (token) {
    headers.Authorization = 'Bearer ' + token;
  }
  return headers;
}

async function problemText(response) {
  try {
    const problem = await response.json();
    return `${response.status} ${problem.title || response.statusText}: ${problem.detail || ''}`;
  } catch (e) {
    return `${response.status} ${response.statusText}`;
  }
}

/** A call of the JSON API with the key of this tab, if any; a 401 asks for a key. */
async function api(path, options = {}) {
  const response = await fetch(path, {
    method: options.method || 'GET',
    headers: authHeaders({Accept: 'application/json'}),
  });
  if (response.status === 401) {
    askForKey(await problemText(response));
    throw new Unauthorized();
  }
  if (!response.ok) {
    throw new ApiError(response.status, await problemText(response));
  }
  return response.json();
}

/** An open probe (/ready, /health): its body whatever the status, which tells why it is not 200. */
async function probe(path) {
  const response = await fetch(path, {headers: {Accept: 'application/json'}});
  return response.json();
}

// ---- credentials

function askForKey(reason) {
  $('auth-reason').textContent = reason + ' Enter an API key or bearer token: it is kept in this tab only.';
  $('auth-form').hidden = false;
  $('auth-key').focus();
}

function showWho() {
  const keyed = sessionStorage.getItem(TOKEN) !== null;
  $('whoami').textContent = keyed ? 'calls carry your key' : '';
  $('auth-forget').hidden = !keyed;
}

$('auth-form').addEventListener('submit', event => {
  event.preventDefault();
  const key = $('auth-key').value.trim();
  if (!key) {
    return;
  }
  sessionStorage.setItem(TOKEN, key);
  $('auth-key').value = '';
  $('auth-form').hidden = true;
  showWho();
  show(current);
});

$('auth-forget').addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN);
  stopStream();
  showWho();
  show(current);
});

// ---- tabs

const loaders = {
  types: loadTypes,
  entity: ensureTypes,
  list: ensureTypes,
  workers: loadWorkers,
  cluster: loadCluster,
  views: loadViews,
};
let current = 'types';

function show(tab) {
  current = tab;
  document.querySelectorAll('section.tab').forEach(section => { section.hidden = section.id !== tab; });
  document.querySelectorAll('nav button').forEach(button => button.classList.toggle('active', button.dataset.tab === tab));
  run(loaders[tab]);
}

function showError(message) {
  $('error').hidden = !message;
  $('error').textContent = message || '';
}

let running = 0;

/** Runs a loader; a failure shows at the top of the page (a 401 shows the key prompt instead). */
async function run(loader) {
  running++;
  try {
    await loader();
    showError(null);
  } catch (e) {
    if (!(e instanceof Unauthorized)) {
      showError(e.message);
    }
  } finally {
    running--;
  }
}

document.querySelectorAll('nav button').forEach(button => button.addEventListener('click', () => show(button.dataset.tab)));
document.querySelectorAll('button.refresh').forEach(button =>
  button.addEventListener('click', () => run(loaders[button.dataset.refresh])));

// Workers, the cluster and views change by themselves: the visible one is read again now and then.
// Types are not: counting entities reads every key.
setInterval(() => {
  if ($('auto-refresh').checked && running === 0 && ['workers', 'cluster', 'views'].includes(current)
      && $('auth-form').hidden && document.visibilityState === 'visible') {
    run(loaders[current]);
  }
}, REFRESH_MS);

/** Replaces the children of a container only when what they show changed, so that nothing under the pointer flickers. */
function render(container, data, build) {
  const shown = json(data);
  if (container.dataset.shown === shown) {
    return;
  }
  container.dataset.shown = shown;
  container.replaceChildren(...build());
}

function emptyRow(columns, text) {
  return el('tr', {}, el('td', {colSpan: columns, class: 'note'}, text));
}

// ---- types

let catalog = null;

async function loadTypes() {
  const body = await api('/v1/_types');
  catalog = body.types;
  fillTypeSelects();
  render($('types-rows'), body, () => body.types.map(type => el('tr', {'data-type': type.name},
    el('td', {}, el('a', {class: 'entity-link', onclick: () => listType(type.name)}, type.name)),
    el('td', {class: 'number', 'data-field': 'entities'}, type.entities),
    el('td', {class: 'number'}, type.partitions),
    el('td', {}, type.indexes.map(index => `${index.name} (${index.path})`).join(', ') || '—'),
    el('td', {}, type.views.join(', ') || '—'))));
}

async function ensureTypes() {
  if (!catalog) {
    await loadTypes();
  }
}

function fillTypeSelects() {
  for (const select of [$('entity-type'), $('list-type')]) {
    const chosen = select.value;
    select.replaceChildren(...catalog.map(type => el('option', {value: type.name}, type.name)));
    if (catalog.some(type => type.name === chosen)) {
      select.value = chosen;
    }
  }
  fillIndexes();
}

function fillIndexes() {
  const type = (catalog || []).find(t => t.name === $('list-type').value);
  const chosen = $('list-index').value;
  $('list-index').replaceChildren(el('option', {value: ''}, 'all, by id'),
    ...(type ? type.indexes : []).map(index => el('option', {value: index.name}, index.name)));
  $('list-index').value = type && type.indexes.some(index => index.name === chosen) ? chosen : '';
}

function listType(type) {
  $('list-type').value = type;
  fillIndexes();
  show('list');
  run(() => listEntities(null));
}

// ---- one entity: state, history, live changes

let stream = null;

function stopStream() {
  if (stream) {
    stream.abort();
    stream = null;
  }
}

function entityPath(type, id) {
  return '/v1/' + enc(type) + '/' + enc(id);
}

function openEntity(type, id) {
  $('entity-type').value = type;
  $('entity-id').value = id;
  show('entity');
  run(lookUp);
}

$('entity-form').addEventListener('submit', event => {
  event.preventDefault();
  run(lookUp);
});

async function lookUp() {
  const type = $('entity-type').value;
  const id = $('entity-id').value.trim();
  if (!type || !id) {
    return;
  }
  stopStream();
  $('entity-state').textContent = '';
  $('entity-version').textContent = '';
  $('entity-history').replaceChildren();
  $('entity-live').replaceChildren();
  $('entity-more').hidden = true;
  $('entity-status').textContent = 'reading…';
  const path = entityPath(type, id);
  try {
    const entity = await api(path);
    showState(entity.version, entity.state);
    $('entity-status').textContent = `${type} '${id}'`;
    await loadHistory(path, 1);
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 404) {
      $('entity-status').textContent = '';
      throw e;
    }
    $('entity-status').textContent = `No ${type} '${id}' yet: its first change will appear below.`;
  }
  openStream(path);
}

function showState(version, state) {
  $('entity-version').textContent = 'version ' + version;
  $('entity-state').textContent = json(state, true);
}

const HISTORY_PAGE = 100;

async function loadHistory(path, fromVersion) {
  const body = await api(`${path}/events?fromVersion=${fromVersion}&limit=${HISTORY_PAGE}`);
  $('entity-history').append(...body.events.map(historyRow));
  const more = $('entity-more');
  more.hidden = body.events.length < HISTORY_PAGE;
  if (!more.hidden) {
    const next = body.events[body.events.length - 1].version + 1;
    more.onclick = () => run(() => loadHistory(path, next));
  }
}

function historyRow(event) {
  return el('tr', {'data-version': event.version},
    el('td', {class: 'number'}, event.version),
    el('td', {}, event.type),
    el('td', {}, event.time || ''),
    el('td', {class: 'json'}, json(event.payload)));
}

/** A live change joins the history when the history shown reaches up to it (no page of it is still to load). */
function addToHistory(event) {
  const rows = $('entity-history').rows;
  const last = rows.length === 0 ? 0 : Number(rows[rows.length - 1].dataset.version);
  if ($('entity-more').hidden && event.version === last + 1) {
    $('entity-history').append(historyRow(event));
  }
}

/**
 * Follows the entity's changes (Server-Sent Events). EventSource cannot send an Authorization
 * header, so the stream is read with fetch; when it ends (the node stopped, or cut a slow reader)
 * it is opened again with the last id seen, and the node sends what was missed.
 */
async function openStream(path) {
  const controller = new AbortController();
  stream = controller;
  const status = $('entity-stream');
  let lastId = null;
  while (!controller.signal.aborted) {
    status.textContent = lastId === null ? 'connecting…' : 'reconnecting…';
    try {
      const headers = authHeaders({Accept: 'text/event-stream'});
      if (lastId !== null) {
        headers['Last-Event-ID'] = lastId;
      }
      const response = await fetch(path + '/changes', {headers, signal: controller.signal});
      if (response.status === 401) {
        status.textContent = 'closed';
        askForKey(await problemText(response));
        return;
      }
      if (!response.ok) {
        status.textContent = 'refused: ' + await problemText(response);
        return;
      }
      status.textContent = 'live';
      await readEvents(response, (event, id, data) => {
        if (id !== null) {
          lastId = id;
        }
        onStreamEvent(event, JSON.parse(data));
      });
    } catch (e) {
      if (controller.signal.aborted) {
        return;
      }
      status.textContent = 'interrupted: ' + e.message;
    }
    await new Promise(resolve => setTimeout(resolve, 1000));
  }
}

/** Reads Server-Sent Events from a fetch response until it ends: (event, id, data) per event. */
async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const {value, done} = await reader.read();
    if (done) {
      return;
    }
    buffer += decoder.decode(value, {stream: true}).replace(/\r/g, '');
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = 'message';
      let id = null;
      const data = [];
      for (const line of frame.split('\n')) {
        if (line === '' || line.startsWith(':')) {
          continue;  // a comment: keeps the connection open
        }
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') {
          event = text;
        } else if (field === 'id') {
          id = text;
        } else if (field === 'data') {
          data.push(text);
        }
      }
      if (data.length > 0) {
        onEvent(event, id, data.join('\n'));
      }
    }
  }
}

function onStreamEvent(event, data) {
  if (event === 'state') {
    showState(data.version, data.state);
  } else if (event === 'change') {
    const change = data.event;
    if (data.state !== undefined) {
      showState(change.version, data.state);
    }
    addToHistory(change);
    $('entity-live').prepend(el('li', {class: 'fresh', 'data-version': change.version},
      el('b', {}, `v${change.version} ${change.type}`), ' ', el('span', {class: 'badge'}, change.time || ''),
      el('div', {class: 'json'}, json(change.payload))));
  }
}

// ---- lists of entities

$('list-type').addEventListener('change', fillIndexes);
$('list-form').addEventListener('submit', event => {
  event.preventDefault();
  run(() => listEntities(null));
});

async function listEntities(after) {
  const type = $('list-type').value;
  const params = new URLSearchParams();
  const index = $('list-index').value;
  if (index && $('list-value').value !== '') {
    params.set(index, $('list-value').value);
  }
  params.set('limit', $('list-limit').value || '20');
  if (after) {
    params.set('after', after);
  }
  const page = await api('/v1/' + enc(type) + '?' + params);
  $('list-rows').replaceChildren(...(page.items.length === 0 ? [emptyRow(3, 'no entities')] : page.items.map(item =>
    el('tr', {'data-key': item.key},
      el('td', {}, el('a', {class: 'entity-link', onclick: () => openEntity(type, item.key)}, item.key)),
      el('td', {class: 'number'}, item.version),
      el('td', {class: 'json'}, abbreviated(json(item.state)))))));
  const next = $('list-next');
  next.hidden = !page.next;
  next.onclick = () => run(() => listEntities(page.next));
}

function abbreviated(text) {
  return text.length > 240 ? text.slice(0, 240) + '…' : text;
}

// ---- side-effect workers and parked entities

const WORKER_FIELDS = ['delivered', 'retried', 'deadLettered', 'parked', 'skipped', 'inFlight', 'lag'];

async function loadWorkers() {
  const body = await api('/v1/_effects');
  const names = Object.keys(body.workers).sort();
  render($('workers-rows'), body, () => names.length === 0 ? [emptyRow(9, 'this node runs no worker')]
    : names.map(name => {
      const worker = body.workers[name];
      return el('tr', {'data-worker': name}, el('td', {}, name),
        ...WORKER_FIELDS.map(field => el('td', {class: 'number', 'data-field': field}, worker[field])),
        el('td', {class: worker.breaker, 'data-field': 'breaker'}, worker.breaker));
    }));
  const lots = await Promise.all(names.map(name =>
    api('/v1/_effects/' + enc(name) + '/parked').then(lot => ({worker: name, parked: lot.parked}))));
  const parked = lots.flatMap(lot => lot.parked.map(entity => ({worker: lot.worker, entity})));
  render($('parked'), parked, () => parked.length === 0 ? [el('p', {class: 'note'}, 'No entity is parked.')]
    : parked.map(({worker, entity}) => parkedEntity(worker, entity)));
}

/** A parked entity: its dead letter (the event that failed, with the error) first, then the events held behind it. */
function parkedEntity(worker, entity) {
  return el('div', {class: 'parked-entity', 'data-worker': worker, 'data-type': entity.type, 'data-key': entity.key},
    el('div', {}, el('b', {}, worker), ' parked ',
      el('a', {class: 'entity-link', onclick: () => openEntity(entity.type, entity.key)}, `${entity.type} '${entity.key}'`),
      ` (${entity.events.length} event${entity.events.length === 1 ? '' : 's'})`),
    el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'event'), el('th', {}, 'type'), el('th', {}, 'attempts'),
      el('th', {}, 'dead letter'))),
    el('tbody', {}, entity.events.map(event => el('tr', {'data-event': event.id},
      el('td', {}, event.id), el('td', {}, event.type), el('td', {class: 'number'}, event.attempts ?? ''),
      el('td', {class: event.error ? 'dead-letter error' : 'note'}, event.error || 'held behind it'))))),
    el('div', {class: 'actions'},
      el('button', {type: 'button', class: 'replay', onclick: e => resolve(worker, entity, 'replay', e.target)}, 'Replay'),
      el('button', {type: 'button', class: 'skip', onclick: e => resolve(worker, entity, 'skip', e.target)},
        'Skip the dead letter')));
}

/** Replay: deliver the parked events again; skip: drop the dead letter, then deliver the rest. */
async function resolve(worker, entity, action, button) {
  const status = $('parked-status');
  button.disabled = true;
  status.textContent = `${action} of ${entity.type} '${entity.key}'…`;
  try {
    const result = await api(`/v1/_effects/${enc(worker)}/parked/${enc(entity.type)}/${enc(entity.key)}/${action}`,
      {method: 'POST'});
    status.textContent = `${worker}: ${entity.type} '${entity.key}': ${result.replayed} delivered, ${result.skipped}`
      + ` skipped, ${result.stillParked} still parked` + (result.error ? ` (${result.error})` : '');
  } catch (e) {
    status.textContent = `${action} of ${entity.type} '${entity.key}' failed: ${e.message}`;
  } finally {
    button.disabled = false;
  }
  await run(loadWorkers);
}

// ---- cluster

async function loadCluster() {
  const [cluster, ready, health] = await Promise.all([api('/v1/_cluster'), probe('/ready'), probe('/health')]);
  $('cluster-node').textContent = cluster.node;
  $('cluster-ready').textContent = ready.status;
  $('cluster-ready').className = ready.status === 'READY' ? 'ok' : 'down';
  $('cluster-ready-detail').textContent = ready.detail || '';
  const names = Object.keys(cluster.nodes).sort();
  render($('cluster-nodes'), cluster.nodes, () => names.map(name => {
    const node = cluster.nodes[name];
    return el('tr', {'data-node': name},
      el('td', {}, name + (name === cluster.node ? ' (this node)' : '')),
      el('td', {class: node.status}, node.status + (node.deadSince ? ' since ' + node.deadSince : '')),
      el('td', {}, node.url), el('td', {class: 'number'}, node.generation),
      el('td', {}, node.partitions.join(', ') || '—'));
  }));
  const lag = Object.entries(cluster.lag).sort(([a], [b]) => a.localeCompare(b));
  render($('cluster-lag'), lag, () => lag.length === 0 ? [emptyRow(2, 'no partition assigned')]
    : lag.map(([partition, records]) => el('tr', {}, el('td', {}, partition), el('td', {class: 'number'}, records))));
  const restoring = Object.entries(ready.restoring || {}).sort(([a], [b]) => a.localeCompare(b));
  render($('cluster-restoring'), restoring, () => restoring.length === 0 ? [emptyRow(3, 'nothing is being restored')]
    : restoring.map(([partition, progress]) => el('tr', {}, el('td', {}, partition),
      el('td', {class: 'number'}, progress.read), el('td', {class: 'number'}, progress.of))));
  render($('cluster-standbys'), cluster.standbys, () => cluster.standbys.length === 0 ? [el('li', {class: 'note'}, 'none')]
    : cluster.standbys.map(partition => el('li', {}, partition
      + ((cluster.standbysReadToEnd || []).includes(partition) ? '' : ' (catching up: not read to its end yet)'))));
  const loops = Object.entries(health.loops || {}).sort(([a], [b]) => a.localeCompare(b));
  render($('cluster-loops'), loops, () => loops.map(([name, loop]) => el('tr', {},
    el('td', {}, name), el('td', {class: loop.state === 'UP' ? 'ok' : 'down'}, loop.state),
    el('td', {class: 'number'}, loop.restarts), el('td', {}, loop.lastError || ''))));
}

// ---- views

async function loadViews() {
  const body = await api('/v1/_views');
  render($('views-rows'), body, () => body.views.length === 0 ? [emptyRow(7, 'no views are declared')]
    : body.views.map(view => el('tr', {'data-view': view.name},
      el('td', {}, view.name), el('td', {}, view.from.join(', ')),
      el('td', {class: view.state}, view.state), el('td', {}, view.version ?? '—'),
      el('td', {class: 'number'}, `${view.partitionsBuilt} of ${view.partitions}`),
      el('td', {class: 'number'}, view.lag),
      el('td', {}, el('button', {type: 'button', onclick: () => run(() => listRows(view.name, null))}, 'Rows')))));
}

async function listRows(view, after) {
  const page = await api('/v1/_views/' + enc(view) + '?limit=20' + (after ? '&after=' + enc(after) : ''));
  $('view-rows-title').hidden = false;
  $('view-rows-title').textContent = `Rows of ${view}`;
  $('view-rows-table').hidden = false;
  $('view-rows').replaceChildren(...(page.items.length === 0 ? [emptyRow(3, 'no rows')] : page.items.map(item =>
    el('tr', {}, el('td', {}, item.key), el('td', {class: 'number'}, item.entities),
      el('td', {class: 'json'}, abbreviated(json(item.row)))))));
  const next = $('view-rows-next');
  next.hidden = !page.next;
  next.onclick = () => run(() => listRows(view, page.next));
}

showWho();
show('types');
