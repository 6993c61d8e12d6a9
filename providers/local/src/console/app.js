// The skyform console: one page, no framework, no build step. Views are functions that fetch
// what they show and build DOM nodes with h() (text is never parsed as HTML). Live updates come
// from /console/events (server-sent events): log lines, invocations, trace steps and resource
// counts; the current view re-renders when something it shows changed.
'use strict';

const state = { view: 'stack', fn: null, bucket: null, table: null, trace: null, status: null, live: [] };

function h(tag, attrs, ...kids) {
  const e = document.createElementNS(tag === 'svg' || state.inSvg ? 'http://www.w3.org/2000/svg' : 'http://www.w3.org/1999/xhtml', tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.setAttribute('class', v);
    else if (k === 'value') e.value = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids.flat(Infinity)) if (k !== null && k !== undefined && k !== false) e.append(k instanceof Node ? k : String(k));
  return e;
}
function svg(tag, attrs, ...kids) { state.inSvg = true; try { return h(tag, attrs, ...kids); } finally { state.inSvg = false; } }

async function api(path, opts = {}) {
  const headers = Object.assign({}, opts.headers || {});
  if (opts.method && opts.method !== 'GET') headers['x-skyform-console'] = '1';
  const r = await fetch(path, Object.assign({}, opts, { headers, credentials: 'same-origin' }));
  const text = await r.text();
  let body; try { body = text ? JSON.parse(text) : null; } catch { body = text; }
  if (!r.ok) { const m = (body && body.message) || text || r.statusText; showError(`${r.status}: ${m}`); throw new Error(m); }
  return { body, headers: r.headers };
}
function showError(m) { document.getElementById('error').textContent = m; }
const enc = encodeURIComponent;
const ms = (v) => v === undefined || v === null ? '' : v < 1 ? `${v.toFixed(2)} ms` : v < 1000 ? `${v.toFixed(1)} ms` : `${(v / 1000).toFixed(2)} s`;
const time = (t) => t ? new Date(t).toLocaleTimeString() : '';
const pretty = (v) => { try { return JSON.stringify(typeof v === 'string' ? JSON.parse(v) : v, null, 2); } catch { return String(v); } };
const statusCls = (s) => s === 'ok' ? 'ok' : 'bad';

async function status() { state.status = (await api('/console/v1/status')).body; document.getElementById('project').textContent = state.status.project_dir || ''; return state.status; }

// ---- Stack: resources as a tree and a graph, inputs and outputs (secrets masked), history.
async function viewStack() {
  const stacks = (await api('/console/api/stacks')).body;
  if (!stacks.length) return [h('p', { class: 'muted' }, 'No stack has been deployed in this project yet: run `skyform up`.')];
  return stacks.map((s) => {
    const res = s.state.resources || [];
    return h('section', { id: `stack-${s.stack}` },
      h('h2', {}, `Stack ${s.stack}`, h('span', { class: 'muted' }, ` · ${res.length} resources · serial ${s.state.serial}`)),
      h('div', { class: 'cols' },
        h('div', { class: 'card tree' }, h('h2', {}, 'Resources'), tree(res)),
        h('div', {},
          h('div', { class: 'card' }, h('h2', {}, 'Graph'), graph(res)),
          h('div', { class: 'card' }, h('h2', {}, 'Outputs'), h('pre', {}, pretty(s.state.outputs || {}))),
          h('div', { class: 'card' }, h('h2', {}, 'Last operations'), history(s.history)))));
  });
}
function tree(res) {
  // A resource's parent is a component (not a resource itself: shown as a folder) or a
  // resource; anything else, or a loop, puts it at the top.
  const names = new Set(res.map((r) => r.name));
  const kids = {};
  for (const r of res) { const p = r.parent && r.parent !== r.name ? r.parent : ''; (kids[p] = kids[p] || []).push(r); }
  const done = new Set();
  const node = (r) => { done.add(r.name); return h('li', { 'data-resource': r.name },
    h('details', {}, h('summary', {}, r.name, h('span', { class: 'type' }, r.type)),
      h('div', { class: 'muted' }, 'inputs'), h('pre', {}, pretty(r.inputs)),
      h('div', { class: 'muted' }, 'outputs'), h('pre', {}, pretty(r.outputs))),
    kids[r.name] ? h('ul', {}, kids[r.name].filter((k) => !done.has(k.name)).map(node)) : null); };
  const roots = (kids[''] || []).map(node);
  for (const p of Object.keys(kids)) if (p && !names.has(p)) roots.push(h('li', { 'data-component': p }, h('strong', {}, p), h('span', { class: 'type' }, 'component'), h('ul', {}, kids[p].filter((k) => !done.has(k.name)).map(node))));
  for (const r of res) if (!done.has(r.name)) roots.push(node(r));
  return h('ul', {}, roots);
}
function graph(res) {
  // Layers by dependency depth, left to right; an edge from each dependency to its dependent.
  const by = Object.fromEntries(res.map((r) => [r.name, r]));
  const depth = {};
  const d = (n, seen = new Set()) => {
    if (depth[n] !== undefined) return depth[n];
    if (seen.has(n)) return 0; seen.add(n);
    const deps = ((by[n] || {}).dependencies || []).filter((x) => by[x]);
    return (depth[n] = deps.length ? 1 + Math.max(...deps.map((x) => d(x, seen))) : 0);
  };
  res.forEach((r) => d(r.name));
  const cols = {};
  for (const r of res) (cols[depth[r.name]] = cols[depth[r.name]] || []).push(r.name);
  const W = 170, H = 34, pos = {};
  let rows = 0;
  for (const [c, ns] of Object.entries(cols)) { ns.forEach((n, i) => { pos[n] = [10 + c * (W + 40), 10 + i * (H + 12)]; }); rows = Math.max(rows, ns.length); }
  const width = 20 + Object.keys(cols).length * (W + 40), height = 20 + rows * (H + 12);
  const edges = [];
  for (const r of res) for (const dep of r.dependencies || []) if (pos[dep]) {
    const [x1, y1] = pos[dep], [x2, y2] = pos[r.name];
    edges.push(svg('path', { d: `M${x1 + W},${y1 + H / 2} C${x1 + W + 20},${y1 + H / 2} ${x2 - 20},${y2 + H / 2} ${x2},${y2 + H / 2}`, fill: 'none', stroke: '#9aa3b5' }));
  }
  const nodes = res.map((r) => { const [x, y] = pos[r.name]; return svg('g', { 'data-node': r.name },
    svg('rect', { x, y, width: W, height: H, rx: 5, fill: '#fff', stroke: '#2f6fde' }),
    svg('text', { x: x + 8, y: y + 14 }, r.name.length > 24 ? r.name.slice(0, 23) + '…' : r.name),
    svg('text', { x: x + 8, y: y + 28, fill: '#6b7385' }, r.type)); });
  return svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, id: 'graph' }, edges, nodes);
}
function history(list) {
  if (!list || !list.length) return h('p', { class: 'muted' }, 'none recorded');
  return h('table', {}, h('tr', {}, ['command', 'started', 'duration', 'result', 'changes'].map((t) => h('th', {}, t))),
    list.map((e) => h('tr', {}, h('td', {}, e.command), h('td', {}, e.started), h('td', {}, ms(e.duration_ms)),
      h('td', { class: e.result === 'succeeded' ? 'ok' : 'warn' }, e.result),
      h('td', {}, Object.entries(e.changes || {}).map(([k, v]) => `${k} ${v}`).join(', ')))));
}

// ---- Functions: invocations, invoke with an edited event, logs, HTTP routes.
async function viewFunctions() {
  const st = await status();
  const fns = st.functions || [];
  if (!state.fn && fns.length) state.fn = `${fns[0].stack}/${fns[0].name}`;
  const list = h('table', {}, h('tr', {}, h('th', {}, 'function'), h('th', {}, 'runtime'), h('th', {}, 'warm')),
    fns.map((f) => { const id = `${f.stack}/${f.name}`; return h('tr', { class: `click ${id === state.fn ? 'sel' : ''}`, 'data-function': f.name, onclick: () => { state.fn = id; state.force = true; render(); } },
      h('td', {}, f.name, h('span', { class: 'muted' }, ` ${f.stack}`)), h('td', {}, f.runtime), h('td', {}, f.environments)); }));
  const out = [h('div', { class: 'cols' }, h('div', { class: 'card' }, h('h2', {}, 'Functions'), list), state.fn ? await fnDetail(state.fn) : h('div', {}))];
  out.push(routes(st.apis || []));
  return out;
}
async function fnDetail(id) {
  const [stack, name] = id.split('/');
  const invs = (await api(`/console/api/invocations?stack=${enc(stack)}&function=${enc(name)}`)).body;
  const event = h('textarea', { id: 'invoke-event' }, state.lastEvent && state.lastEvent[id] || (invs[0] ? pretty(invs[0].event) : '{}'));
  // The last result of each function survives re-renders.
  state.results = state.results || {};
  const shown = state.results[id] || { cls: 'muted', text: 'no result yet' };
  const result = h('pre', { id: 'invoke-result', class: shown.cls }, shown.text);
  const set = (cls, text) => { state.results[id] = { cls, text }; const el = document.getElementById('invoke-result'); if (el) { el.className = cls; el.textContent = text; } };
  const invoke = async () => {
    state.lastEvent = Object.assign(state.lastEvent || {}, { [id]: event.value });
    set('muted', 'invoking…');
    try {
      const r = await api(`/console/v1/stacks/${enc(stack)}/functions/${enc(name)}/invoke`, { method: 'POST', body: event.value });
      const err = r.headers.get('x-amz-function-error');
      set(err ? 'bad' : 'ok', `${err ? 'error' : 'ok'} · request ${r.headers.get('x-amzn-requestid')}\n${pretty(r.body)}`);
    } catch (e) { set('bad', e.message); }
  };
  const rows = invs.map((v) => h('tr', { class: 'click', 'data-request': v.request_id, onclick: (e) => toggleInvocation(e.currentTarget, v) },
    h('td', {}, time(v.start_ms)), h('td', {}, v.trigger), h('td', {}, ms(v.duration_ms)),
    h('td', { class: statusCls(v.status) }, v.status), h('td', {}, v.cold ? 'cold' : 'warm')));
  const live = h('pre', { id: 'live-log', class: 'log' }, state.live.filter((l) => `${l.stack}/${l.function}` === id).map(logLine));
  return h('div', { 'data-detail': name },
    h('div', { class: 'card' }, h('h2', {}, `Invoke ${name}`), event, h('div', { class: 'row' }, h('button', { id: 'invoke', onclick: invoke }, 'Invoke')), result),
    h('div', { class: 'card' }, h('h2', {}, 'Live log'), live),
    h('div', { class: 'card' }, h('h2', {}, 'Recent invocations'), invs.length ? h('table', { id: 'invocations' },
      h('tr', {}, ['time', 'trigger', 'duration', 'status', 'start'].map((t) => h('th', {}, t))), rows) : h('p', { class: 'muted' }, 'none since the local cloud started')));
}
async function toggleInvocation(tr, v) {
  if (tr.nextSibling && tr.nextSibling.classList && tr.nextSibling.classList.contains('detail')) { tr.nextSibling.remove(); return; }
  const logs = (await api(`/console/api/logs?stack=${enc(v.stack)}&function=${enc(v.function)}&request_id=${enc(v.request_id)}`)).body;
  tr.after(h('tr', { class: 'detail' }, h('td', { colspan: 5 },
    h('div', { class: 'muted' }, `request ${v.request_id} · trace `, h('a', { href: `#traces/${v.trace}` }, v.trace)),
    h('div', { class: 'muted' }, 'event'), h('pre', {}, pretty(v.event)),
    h('div', { class: 'muted' }, 'logs'), h('pre', { class: 'log' }, logs.map(logLine)))));
}
const logLine = (l) => h('span', { class: 'line' }, h('span', { class: 'rid' }, `${time(l.time_ms)} `), l.message);
function routes(apis) {
  if (!apis.length) return h('div', {});
  return h('div', { class: 'card', id: 'routes' }, h('h2', {}, 'HTTP routes'), apis.map((a) => {
    const method = h('select', {}, ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].map((m) => h('option', {}, m)));
    const path = h('input', { type: 'text', value: '/', size: 30 });
    const body = h('textarea', { placeholder: 'request body' });
    state.answers = state.answers || {};
    const out = h('pre', { class: 'muted' }, state.answers[a.name] || '');
    const first = (a.routes || [])[0];
    if (first) { const [m, p] = (first.route || '').split(' '); if (p) { path.value = p.replace(/\{[^}]+\}/g, 'x'); if (m && m !== 'ANY') method.value = m; } }
    const send = async () => {
      out.textContent = 'sending…';
      const r = (await api('/console/api/request', { method: 'POST', body: JSON.stringify({ port: a.port, method: method.value, path: path.value, body: body.value, headers: { 'content-type': 'application/json' } }) })).body;
      state.answers[a.name] = `${r.status} · ${ms(r.duration_ms)}\n${r.body}`;
      const el = document.querySelector(`[data-api="${a.name}"] pre`) || out;
      el.className = r.status < 400 ? 'ok' : 'bad';
      el.textContent = state.answers[a.name];
    };
    return h('div', { 'data-api': a.name },
      h('div', {}, h('strong', {}, a.name), ' ', h('code', {}, a.url), ' ', (a.routes || []).map((r) => h('code', {}, ` ${r.route} → ${r.function}`))),
      h('div', { class: 'row' }, method, path, h('button', { onclick: send }, 'Send')), body, out);
  }));
}

// ---- Queues: depth, in flight, dead letters; peek, send, redrive, purge.
async function viewQueues() {
  const qs = (await api('/console/api/queues')).body;
  if (!qs.length) return [h('p', { class: 'muted' }, 'No queues.')];
  return [h('div', { class: 'card' }, h('table', { id: 'queues' },
    h('tr', {}, ['queue', 'visible', 'in flight', 'delayed', 'dead letters', 'send', ''].map((t) => h('th', {}, t))),
    qs.map((q) => {
      const text = h('input', { type: 'text', placeholder: 'message body', size: 24 });
      const peek = h('td', { colspan: 7 });
      const act = (what) => async () => { const r = (await api(`/console/api/queues/${enc(q.name)}/${what}`, { method: 'POST', body: JSON.stringify({ body: text.value }) })).body; if (what === 'redrive') showError(`moved ${r.moved} to ${r.to}`); refresh(); };
      return [h('tr', { 'data-queue': q.name },
        h('td', {}, q.name, q.dead_letter_queue ? h('div', { class: 'muted' }, `dead letters → ${q.dead_letter_queue}`) : null),
        h('td', { class: 'visible' }, q.visible), h('td', {}, q.in_flight), h('td', {}, q.delayed),
        h('td', { class: q.dead_letters ? 'bad' : '' }, q.dead_letter_queue ? q.dead_letters : '–'),
        h('td', {}, h('div', { class: 'row' }, text, h('button', { class: 'send', onclick: act('send') }, 'Send'))),
        h('td', {}, h('div', { class: 'row' },
          h('button', { class: 'plain', onclick: async () => { const m = (await api(`/console/api/queues/${enc(q.name)}/peek`)).body; peek.replaceChildren(m.length ? h('pre', {}, m.map((x) => `${x.id}  (${x.receives} receives)\n${x.body}`).join('\n\n')) : h('span', { class: 'muted' }, 'empty')); } }, 'Peek'),
          q.redrives_to.length ? h('button', { class: 'plain', onclick: act('redrive') }, `Redrive to ${q.redrives_to.join(', ')}`) : null,
          h('button', { class: 'danger', onclick: () => { if (confirm(`Delete every message of ${q.name}?`)) act('purge')(); } }, 'Purge')))),
      h('tr', {}, peek)];
    })))];
}

// ---- Buckets: browse, upload, download, delete.
async function viewBuckets() {
  const st = await status();
  const bs = (st.buckets && st.buckets.buckets) || [];
  if (!bs.length) return [h('p', { class: 'muted' }, 'No buckets.')];
  if (!state.bucket || !bs.some((b) => b.name === state.bucket)) state.bucket = bs[0].name;
  const b = state.bucket;
  const list = (await api(`/console/api/buckets/${enc(b)}`)).body;
  const file = h('input', { type: 'file', id: 'upload-file' });
  const upload = async () => {
    const f = file.files[0]; if (!f) return;
    await api(`/console/api/buckets/${enc(b)}/object?key=${enc(f.name)}&content_type=${enc(f.type)}`, { method: 'PUT', body: f });
    file.value = '';
    refresh();
  };
  return [h('div', { class: 'cols' },
    h('div', { class: 'card' }, h('h2', {}, 'Buckets'), h('table', {}, bs.map((x) => h('tr', { class: `click ${x.name === b ? 'sel' : ''}`, onclick: () => { state.bucket = x.name; file.value = ''; render(); } }, h('td', {}, x.name), h('td', {}, `${x.objects} objects`))))),
    h('div', { class: 'card' }, h('h2', {}, `Objects in ${b}`),
      h('div', { class: 'row' }, file, h('button', { id: 'upload', onclick: upload }, 'Upload')),
      h('table', { id: 'objects' }, h('tr', {}, ['key', 'size', 'modified', ''].map((t) => h('th', {}, t))),
        list.objects.map((o) => h('tr', { 'data-key': o.key }, h('td', {}, o.key), h('td', {}, o.size), h('td', {}, time(o.last_modified_ms)),
          h('td', {}, h('div', { class: 'row' }, h('a', { href: `/console/api/buckets/${enc(b)}/object?key=${enc(o.key)}`, download: o.key.split('/').pop() }, 'download'),
            h('button', { class: 'danger', onclick: async () => { await api(`/console/api/buckets/${enc(b)}/object?key=${enc(o.key)}`, { method: 'DELETE' }); refresh(); } }, 'Delete')))))),
      list.objects.length ? null : h('p', { class: 'muted' }, 'empty')))];
}

// ---- Tables: browse, query by partition, edit one item.
async function viewTables() {
  const st = await status();
  const ts = st.tables || [];
  if (!ts.length) return [h('p', { class: 'muted' }, 'No tables.')];
  if (!state.table || !ts.some((t) => t.name === state.table)) state.table = ts[0].name;
  const t = state.table;
  const hash = h('input', { type: 'text', placeholder: 'partition key value', value: state.hash || '' });
  const r = (await api(`/console/api/tables/${enc(t)}?hash=${enc(state.hash || '')}`)).body;
  const edit = h('textarea', { id: 'item-edit', placeholder: 'an item in DynamoDB JSON, e.g. {"id": {"S": "1"}}' });
  const put = async () => { await api(`/console/api/tables/${enc(t)}/item`, { method: 'PUT', body: edit.value }); refresh(); };
  return [h('div', { class: 'cols' },
    h('div', { class: 'card' }, h('h2', {}, 'Tables'), h('table', {}, ts.map((x) => h('tr', { class: `click ${x.name === t ? 'sel' : ''}`, onclick: () => { state.table = x.name; state.hash = ''; render(); } }, h('td', {}, x.name), h('td', {}, `${x.items} items`))))),
    h('div', { class: 'card' }, h('h2', {}, `Items of ${t}`, h('span', { class: 'muted' }, ` · key ${r.keys.join(', ')} · ${r.count} items`)),
      h('div', { class: 'row' }, hash, h('button', { class: 'plain', onclick: () => { state.hash = hash.value; render(); } }, 'Query')),
      h('table', { id: 'items' }, r.items.map((it) => h('tr', { class: 'click', onclick: () => { edit.value = JSON.stringify(it, null, 2); } }, h('td', {}, h('pre', {}, JSON.stringify(it)))))),
      h('h2', {}, 'Edit an item'), edit, h('div', { class: 'row' }, h('button', { id: 'put-item', onclick: put }, 'Put item'))))];
}

// ---- Schedules: next runs, run now.
async function viewSchedules() {
  const st = await status();
  const ss = st.schedules || [];
  if (!ss.length) return [h('p', { class: 'muted' }, 'No schedules.')];
  return [h('div', { class: 'card' }, h('table', { id: 'schedules' }, h('tr', {}, ['schedule', 'expression', 'function', 'next run', 'last run', ''].map((t) => h('th', {}, t))),
    ss.map((s) => { const out = h('span', {}); return h('tr', { 'data-schedule': s.name }, h('td', {}, s.name), h('td', {}, h('code', {}, s.expression), s.enabled ? '' : h('span', { class: 'warn' }, ' disabled')),
      h('td', {}, s.function), h('td', {}, s.next_run || '–'),
      h('td', {}, s.last_run ? `${s.last_run.started} ${s.last_run.error ? '✗ ' + s.last_run.error : '✓'}` : '–'),
      h('td', {}, h('button', { onclick: async () => { out.textContent = ' running…'; const r = await api(`/console/v1/stacks/${enc(s.stack)}/schedules/${enc(s.name)}/run`, { method: 'POST' }); out.textContent = ` ${r.headers.get('x-amz-function-error') ? '✗' : '✓'} ${JSON.stringify(r.body)}`; } }, 'Run now'), out)); })))];
}

// ---- Traces: one request across queues, functions, tables and topics, as a timeline.
async function viewTraces() {
  const list = (await api('/console/api/traces')).body;
  const rows = list.map((t) => h('tr', { class: `click ${t.trace === state.trace ? 'sel' : ''}`, 'data-trace': t.trace, onclick: () => { location.hash = `traces/${t.trace}`; } },
    h('td', {}, time(t.start_ms)), h('td', {}, t.name), h('td', {}, t.steps), h('td', {}, ms(t.duration_ms)), h('td', { class: t.error ? 'bad' : 'ok' }, t.error ? 'error' : 'ok')));
  const left = h('div', { class: 'card' }, h('h2', {}, 'Recent traces'), list.length ? h('table', { id: 'traces' }, h('tr', {}, ['time', 'started by', 'steps', 'span', ''].map((t) => h('th', {}, t))), rows) : h('p', { class: 'muted' }, 'none yet: send a request to an API'));
  return [h('div', { class: 'cols' }, left, state.trace ? await traceDetail(state.trace) : h('div', {}))];
}
async function traceDetail(root) {
  const t = (await api(`/console/api/traces/${enc(root)}`)).body;
  const steps = t.steps;
  if (!steps.length) return h('div', { class: 'card' }, 'This trace is no longer in memory.');
  const t0 = Math.min(...steps.map((s) => s.start_ms));
  const end = Math.max(...steps.map((s) => s.start_ms + s.duration_ms));
  const span = Math.max(end - t0, 1), W = 600, L = 230, RH = 22;
  const chart = svg('svg', { class: 'timeline', width: L + W + 60, height: steps.length * RH + 20 },
    steps.map((s, i) => {
      const x = L + ((s.start_ms - t0) / span) * W, w = Math.max(2, (s.duration_ms / span) * W);
      return svg('g', {}, svg('text', { x: 4, y: i * RH + 15 }, label(s)),
        svg('rect', { class: `bar ${s.kind} ${s.status}`, x, y: i * RH + 4, width: w, height: RH - 8, rx: 2 }),
        svg('text', { x: x + w + 4, y: i * RH + 15, fill: '#6b7385' }, ms(s.duration_ms)));
    }));
  return h('div', { class: 'card', id: 'trace-detail' }, h('h2', {}, `Trace ${root}`), chart,
    steps.map((s) => h('div', { class: 'step', 'data-step': s.kind },
      h('div', {}, h('strong', {}, label(s)), h('span', { class: 'muted' }, ` +${ms(s.start_ms - t0)} · ${ms(s.duration_ms)} · `), h('span', { class: statusCls(s.status) }, s.status), s.kind === 'invoke' ? h('span', { class: 'muted' }, ` · ${s.cold ? 'cold' : 'warm'} · ${s.request_id}`) : null),
      s.event ? h('details', {}, h('summary', { class: 'muted' }, 'event'), h('pre', {}, pretty(s.event))) : null,
      s.logs && s.logs.length ? h('pre', { class: 'log' }, s.logs.map(logLine)) : null)));
}
const label = (s) => s.kind === 'invoke' ? `λ ${s.function} ← ${s.trigger}` : s.name;

// ---- Routing, rendering, live updates.
const views = { stack: viewStack, functions: viewFunctions, queues: viewQueues, buckets: viewBuckets, tables: viewTables, schedules: viewSchedules, traces: viewTraces };
let rendering = null, again = false, shown = null, retry = null;
async function render() {
  if (rendering) { again = true; return rendering; }
  clearTimeout(retry);
  rendering = (async () => {
    const [v, arg] = (location.hash.slice(1) || 'stack').split('/');
    state.view = views[v] ? v : 'stack';
    if (state.view === 'traces') state.trace = arg ? decodeURIComponent(arg) : state.trace;
    for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.id === `nav-${state.view}`);
    try {
      const nodes = await views[state.view]();
      // Keep what the user is typing: re-render only what changed around an open editor.
      // A file chosen for upload is kept too (a live update must not drop the choice).
      const el = document.activeElement;
      // A new selection (another function clicked) is shown even over an open editor: the
      // editor shown belongs to what was selected before.
      const force = state.force; if (!again) state.force = false;
      const typing = el && ['TEXTAREA', 'INPUT', 'SELECT'].includes(el.tagName) && el.closest('main') && !again && !force;
      const chosen = shown === state.view && [...document.querySelectorAll('#view input[type=file]')].some((f) => f.files && f.files.length);
      if (typing || chosen) { pending = true; } else { document.getElementById('view').replaceChildren(...nodes); pending = false; shown = state.view; }
      showError('');
    } catch (e) {
      // A failed fetch (the daemon busy or restarting) leaves the view as it was: try again
      // shortly rather than wait for the next live event.
      showError(e.message); retry = setTimeout(render, 1000);
    }
  })();
  await rendering; rendering = null;
  if (again) { again = false; return render(); }
}
let pending = false, timer = null;
function refresh() { clearTimeout(timer); timer = setTimeout(render, 150); }
document.addEventListener('focusout', () => { if (pending) refresh(); });
window.addEventListener('hashchange', () => render());

function connect() {
  const live = document.getElementById('live');
  const es = new EventSource('/console/events');
  // Each answer of the stream ends after the events it carries; the browser reconnects at once
  // (retry: 100). Only a closed stream (the daemon stopped) is offline: try again later.
  const on = () => { live.textContent = 'live'; live.classList.add('on'); };
  es.addEventListener('ping', on);
  es.onerror = () => { if (es.readyState === EventSource.CLOSED) { live.textContent = 'offline'; live.classList.remove('on'); es.close(); setTimeout(connect, 2000); } };
  es.onmessage = (m) => {
    on();
    const ev = JSON.parse(m.data);
    if (ev.kind === 'log') {
      state.live.push(ev); if (state.live.length > 500) state.live.shift();
      const box = document.getElementById('live-log');
      if (box && state.view === 'functions' && `${ev.stack}/${ev.function}` === state.fn) { box.append(logLine(ev)); box.scrollTop = box.scrollHeight; }
      return;
    }
    if (ev.kind === 'resources' && ['queues', 'buckets', 'tables', 'functions', 'schedules'].includes(state.view)) refresh();
    if ((ev.kind === 'span' || ev.kind === 'invocation-start') && ['functions', 'traces', 'schedules'].includes(state.view)) refresh();
  };
}
render();
connect();
