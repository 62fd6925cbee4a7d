// The viewer: wires the views to a document inlined in an exported file
// (offline) or to the store that serves this page (live).

import { el, clear, formatValue, formatPercent, formatNanos, formatCount, formatTime, searchRegExp, escapeRegExp, traceLink } from './format.js';
import { FlameModel } from './model.js';
import { FlameView } from './flame.js';
import { FunctionTable } from './table.js';
import { TotalsChart } from './chart.js';
import { StoreClient } from './api.js';
import { renderTraceList, renderWaterfall, descendantIds } from './traces.js';

const $ = (id) => document.getElementById(id);
const MAX_NODES = 20000;

const state = {
  mode: 'live',
  tab: 'flame',
  model: null,          // what the flame tab shows
  diffModel: null,
  pickedName: '',       // the function the table, sandwich and details follow
  source: null,         // { kind: 'selection' } or { kind: 'span', span, trace, withDescendants }
  service: '',
  range: { preset: '1h', from: null, until: null },
  template: localStorage.getItem('flare.traceTemplate') || '',
  trace: null,
  search: null,
  timings: { start: performance.now() },
};

const store = new StoreClient();
const tooltip = $('tooltip');
const views = {
  flame: new FlameView($('flame'), { tooltip, breadcrumbs: $('breadcrumbs'), onSelect: (node) => frameSelected(views.flame, node) }),
  diff: new FlameView($('diff'), { tooltip, breadcrumbs: $('diff-breadcrumbs'), onSelect: (node) => frameSelected(views.diff, node) }),
  callers: new FlameView($('callers'), { tooltip, orientation: 'flame' }),
  callees: new FlameView($('callees'), { tooltip, breadcrumbs: $('callees-breadcrumbs') }),
};
const table = new FunctionTable($('tab-table'), { onPick: (name) => functionPicked(name, true) });
const diffTable = new FunctionTable($('diff-table'), { onPick: (name) => functionPicked(name, true) });

// What tests and benchmarks read: the page's own data model and view state.
window.flare = { state, views, table, diffTable, get model() { return state.model; }, timings: state.timings };

function status(text, isError) {
  const node = $('status');
  node.textContent = text || '';
  node.className = isError ? 'error' : '';
}

// MARK: Tabs, search, keyboard

function showTab(tab) {
  state.tab = tab;
  for (const b of document.querySelectorAll('#tabs button')) b.classList.toggle('active', b.dataset.tab === tab);
  for (const s of document.querySelectorAll('main > .tab')) s.hidden = s.id !== 'tab-' + tab;
  $('search-bar').hidden = !(tab === 'flame' || tab === 'diff' || tab === 'sandwich');
  // Canvases measure their width only once visible.
  if (tab === 'flame' && state.model) views.flame.draw();
  if (tab === 'diff' && state.diffModel) views.diff.draw();
  if (tab === 'sandwich') renderSandwich();
  if (tab === 'table') table.render();
  if (tab === 'diff') diffTable.render();
  applySearch();
}

function activeView() { return state.tab === 'diff' ? views.diff : views.flame; }

function applySearch() {
  const text = $('search').value;
  const re = searchRegExp(text);
  const targets = [[views.flame, state.model], [views.diff, state.diffModel], [views.callers, views.callers.model], [views.callees, views.callees.model]];
  let report = null;
  for (const [view, model] of targets) {
    if (!model) continue;
    const result = re ? model.search(re) : null;
    view.setHighlight(result ? result.match : null);
    if (view === activeView()) report = result;
  }
  if (!report) {
    $('match').textContent = '';
    state.search = null;
  } else {
    const percent = report.total ? 100 * report.matched / report.total : 0;
    state.search = { pattern: text, matched: report.matched, total: report.total, percent, nodes: report.nodes };
    $('match').textContent = `matched ${formatPercent(report.matched, report.total)} (${formatValue(report.matched, activeView().model.unit)}, ${report.nodes} frames)`;
  }
}

function onKey(e) {
  const typing = e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement || e.target instanceof HTMLTextAreaElement;
  if (e.key === 'Escape') {
    if ($('search').value) { $('search').value = ''; applySearch(); $('search').blur(); } else activeView().reset();
    return;
  }
  if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
  const view = activeView();
  if (e.key === '/') { e.preventDefault(); $('search').focus(); }
  else if (e.key === 'r') view.reset();
  else if (e.key === 'u' || e.key === 'Backspace') { e.preventDefault(); view.zoomOut(); }
  else if (e.key === 'f') { $('orientation').value = view.orientation === 'flame' ? 'icicle' : 'flame'; setOrientation(); }
  else if (e.key === 'c') { $('color-mode').value = $('color-mode').value === 'package' ? 'module' : 'package'; for (const v of Object.values(views)) v.setColorMode($('color-mode').value); }
  else if (e.key === '?') $('help').showModal();
  else if (/^[1-6]$/.test(e.key)) {
    const tabs = [...document.querySelectorAll('#tabs button')].filter((b) => !b.hidden && getComputedStyle(b).display !== 'none');
    const b = tabs[Number(e.key) - 1];
    if (b) showTab(b.dataset.tab);
  }
}

function setOrientation() {
  views.flame.setOrientation($('orientation').value);
  views.diff.setOrientation($('orientation').value);
}

// MARK: Selection of a function

function frameSelected(view, node) {
  const m = view.model;
  if (node <= 0) return;
  functionPicked(m.nameOf(node), false, view, node);
}

function functionPicked(name, fromTable, view, node) {
  state.pickedName = name;
  table.select(name);
  diffTable.select(name);
  for (const v of [views.flame, views.diff]) {
    if (!v.model) continue;
    const index = v.model.names.indexOf(name);
    v.selectedName = index;
    if (!fromTable || v !== activeView()) v.draw();
  }
  if (fromTable) {
    $('search').value = '^' + escapeRegExp(name) + '$';
    applySearch();
  }
  renderDetails(view || views.flame, node);
  if (state.tab === 'sandwich') renderSandwich();
}

function renderDetails(view, node) {
  const box = clear($('details'));
  const name = state.pickedName;
  if (!name) return;
  const m = view.model;
  box.append(el('h3', null, name));
  if (m && node > 0) {
    const file = m.fileOf(node);
    if (file) box.append(el('div', { class: 'file' }, file));
  }
  const tools = el('div', { class: 'detail-tools' },
    el('button', { onclick: () => showTab('sandwich') }, 'Sandwich view'),
    el('button', { onclick: () => { table.filterInput.value = '^' + escapeRegExp(name) + '$'; table.filter = table.filterInput.value; table.render(); showTab('table'); } }, 'In the table'));
  if (state.mode === 'live' && state.service) {
    tools.append(el('button', { id: 'spans-of-function', onclick: () => loadFunctionSpans(name) }, 'Spans and traces that spent most here'));
  }
  box.append(tools, el('div', { id: 'function-spans' }));
}

function renderSandwich() {
  const name = state.pickedName;
  const model = state.model || state.diffModel;
  const f = model ? model.names.indexOf(name) : -1;
  if (!name || f < 0) {
    $('sandwich-title').textContent = 'Pick a function in the flame graph or the table.';
    return;
  }
  $('sandwich-title').textContent = '';
  $('sandwich-title').append('Callers and callees of ', el('strong', null, name));
  views.callers.setModel(model.callersOf(f));
  views.callees.setModel(model.calleesOf(f));
  applySearch();
}

// MARK: Loading documents

function showDocument(doc) {
  const model = new FlameModel(doc);
  if (model.isDiff) {
    state.diffModel = model;
    views.diff.setModel(model);
    diffTable.setModel(model);
    const a = doc.total_a, b = doc.total_b;
    $('diff-summary').textContent = `A: ${formatValue(a, model.unit)}, B: ${formatValue(b, model.unit)}` +
      (doc.mode === 'normalized' ? ' (B scaled to A\'s total)' : '') + '. Red grew, blue shrank; widths are B.';
    if (!state.model) { table.setModel(model); }
  } else {
    state.model = model;
    views.flame.setModel(model);
    table.setModel(model);
  }
  state.pickedName = '';
  clear($('details'));
  applySearch();
  renderAbout(doc);
  if (!state.timings.firstRender) {
    state.timings.firstRender = performance.now();
    requestAnimationFrame(() => requestAnimationFrame(() => { state.timings.firstPaint = performance.now(); }));
  }
  return model;
}

function renderAbout(doc) {
  const box = clear($('tab-about'));
  const m = state.model || state.diffModel;
  const rows = [
    ['Title', doc.title || document.title],
    ['Unit', doc.unit || 'samples'],
    ['Total', doc.total_a !== undefined ? `A ${formatValue(doc.total_a, doc.unit)}, B ${formatValue(doc.total_b, doc.unit)}` : formatValue(doc.total || 0, doc.unit)],
    ['Samples', doc.samples !== undefined ? formatCount(doc.samples) : ''],
    ['CPU time', doc.cpu_ns ? formatNanos(doc.cpu_ns) : ''],
    ['Nodes', m ? `${m.count} shown of ${doc.nodes_total ?? m.count}` : ''],
  ];
  const t = el('table', { class: 'about' });
  for (const [k, v] of rows) if (v) t.append(el('tr', null, el('th', null, k), el('td', null, v)));
  box.append(t);
  if (Array.isArray(doc.labels) && doc.labels.length) {
    box.append(el('h3', null, 'Sample labels'));
    const lt = el('table', { class: 'labels' });
    for (const entry of doc.labels) {
      const values = (entry.values || []).map(([v, n]) => `${v} (${formatCount(n)})`).join(', ');
      lt.append(el('tr', null, el('th', null, String(entry.key)), el('td', null, values)));
    }
    box.append(lt);
  }
}

// MARK: Live mode: the store

function rangeParams() {
  const r = state.range;
  if (r.preset === 'custom' && r.from !== null) return { from: String(r.from), until: String(r.until) };
  return { from: 'now-' + r.preset, until: 'now' };
}

function selectionParams() {
  return { service: state.service, labels: $('labels').value.trim(), ...rangeParams() };
}

async function loadSelection() {
  if (!state.service) return;
  state.source = { kind: 'selection' };
  $('span-banner').hidden = true;
  writeHash();
  status('Loading…');
  try {
    const [graph, totals] = await Promise.all([
      store.json('api/v1/flamegraph', { ...selectionParams(), max_nodes: MAX_NODES }),
      store.json('api/v1/totals', selectionParams()),
    ]);
    showDocument(graph);
    chart.setData(totals);
    status(graph.total ? `${formatValue(graph.total, graph.unit)} in ${graph.windows} windows` + (graph.nodes_kept < graph.nodes_total ? ` (largest ${graph.nodes_kept} of ${graph.nodes_total} nodes)` : '') : 'No samples in this selection.');
  } catch (e) { status(e.message, true); }
  if (state.tab === 'traces') loadTraces();
}

async function loadTraces() {
  try {
    const data = await store.json('api/v1/traces', { service: state.service, ...rangeParams(), limit: 100 });
    renderTraceList($('trace-list'), data.traces, { onOpen: (id) => openTrace(id), template: state.template });
  } catch (e) { status(e.message, true); }
}

async function openTrace(traceId, spanId) {
  try {
    const trace = await store.json('api/v1/traces/' + encodeURIComponent(traceId));
    state.trace = trace;
    showTab('traces');
    renderWaterfall($('waterfall'), trace, { onSpan: (s) => openSpan(trace, s, false), template: state.template, selected: spanId });
    writeHash();
    if (spanId) {
      const span = trace.spans.find((s) => s.span_id === spanId) || { span_id: spanId, name: spanId };
      await openSpan(trace, span, false);
    }
  } catch (e) { status(e.message, true); }
}

async function openSpan(trace, span, withDescendants) {
  state.source = { kind: 'span', trace, span, withDescendants };
  const ids = withDescendants ? descendantIds(trace, span.span_id) : [span.span_id];
  try {
    const graph = await store.json('api/v1/flamegraph', { span_id: ids.slice(0, 1000).join(','), max_nodes: MAX_NODES });
    showDocument(graph);
    renderSpanBanner();
    showTab('flame');
    writeHash();
    status(`${formatValue(graph.total, graph.unit)} in span ${span.name || span.span_id}` + (withDescendants ? ` and ${ids.length - 1} descendants` : ''));
  } catch (e) { status(e.message, true); }
}

function renderSpanBanner() {
  const banner = clear($('span-banner'));
  const src = state.source;
  if (!src || src.kind !== 'span') { banner.hidden = true; return; }
  banner.hidden = false;
  const link = traceLink(state.template, src.trace.trace_id, src.span.span_id);
  const toggle = el('input', { type: 'checkbox', id: 'with-descendants', checked: src.withDescendants,
    onchange: () => openSpan(src.trace, src.span, toggle.checked) });
  banner.append('Samples of span ', el('strong', { id: 'banner-span-name' }, src.span.name || src.span.span_id), ' ',
    el('code', null, src.span.span_id), ' in trace ',
    el('button', { class: 'linkish', onclick: () => openTrace(src.trace.trace_id, src.span.span_id) }, src.trace.trace_id.slice(0, 12) + '…'), ' ',
    el('label', null, toggle, ' with descendants'), ' ',
    link ? el('a', { href: link, target: '_blank', rel: 'noopener noreferrer' }, 'open trace ↗') : '', ' ',
    el('button', { onclick: () => loadSelection() }, 'Back to the selection'));
}

async function loadFunctionSpans(name) {
  const box = clear($('function-spans'));
  try {
    const data = await store.json('api/v1/functions/spans', { ...selectionParams(), function: name, limit: 20 });
    if (!data.spans.length) { box.append(el('p', { class: 'muted' }, 'No span-labelled samples ran this function in the selection.')); return; }
    const list = el('table', { class: 'function-spans' }, el('tr', null, el('th', null, 'Span'), el('th', null, 'Service'), el('th', { class: 'num' }, 'Self'), el('th', { class: 'num' }, 'Total'), el('th', null, 'Trace')));
    for (const s of data.spans) {
      list.append(el('tr', null,
        el('td', null, el('button', { class: 'linkish', onclick: () => openTrace(s.trace_id, s.span_id) }, s.name || s.span_id)),
        el('td', null, s.service || ''),
        el('td', { class: 'num' }, formatCount(s.self)), el('td', { class: 'num' }, formatCount(s.total)),
        el('td', null, s.trace_id ? el('button', { class: 'linkish', onclick: () => openTrace(s.trace_id) }, s.trace_id.slice(0, 12) + '…') : '')));
    }
    box.append(el('h4', null, 'Spans that spent most in this function'), list);
    if (data.traces.length) {
      box.append(el('h4', null, 'Traces'), el('ul', null, data.traces.map((t) => el('li', null,
        el('button', { class: 'linkish', onclick: () => openTrace(t.trace_id) }, t.trace_id), ` total ${formatCount(t.total)}, self ${formatCount(t.self)}`))));
    }
  } catch (e) { box.append(el('p', { class: 'error' }, e.message)); }
}

async function runDiff(params) {
  status('Diffing…');
  try {
    const doc = await store.json('api/v1/diff', { ...params, max_nodes: MAX_NODES });
    state.diffParams = params;
    showDocument(doc);
    showTab('diff');
    status('');
  } catch (e) { status(e.message, true); }
}

function diffFormParams() {
  const value = (id) => $(id).value.trim();
  const range = rangeParams();
  return {
    service: state.service, mode: $('diff-mode').value,
    a_labels: value('a-labels'), a_from: value('a-from') || range.from, a_until: value('a-until') || range.until,
    b_labels: value('b-labels'), b_from: value('b-from') || range.from, b_until: value('b-until') || range.until,
  };
}

function quoteLabel(v) { return '"' + String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"'; }

// "Compare with the previous version": shown only when the store lists two versions or more.
async function checkVersions() {
  const button = $('compare');
  button.hidden = true;
  state.versions = null;
  if (!state.service) return;
  try {
    const data = await store.json('api/v1/versions', { service: state.service });
    const versions = (data && data.versions) || [];
    if (versions.length >= 2) { state.versions = versions; button.hidden = false; }
  } catch (e) { /* the endpoint is optional: no button */ }
}

// Suggestions for the label selector: every name="value" pair of the service's series.
async function loadLabelHints() {
  const list = clear($('label-hints'));
  if (!state.service) return;
  try {
    const names = (await store.json('api/v1/labels', { service: state.service })).names || [];
    for (const name of names.slice(0, 50)) {
      const values = (await store.json('api/v1/labels/' + encodeURIComponent(name) + '/values', { service: state.service })).values || [];
      for (const value of values.slice(0, 100)) list.append(el('option', { value: `{${name}=${quoteLabel(value)}}` }));
    }
  } catch (e) { /* hints are optional */ }
}

function compareVersions() {
  const v = state.versions;
  if (!v || v.length < 2) return;
  const older = v[v.length - 2], newer = v[v.length - 1];
  $('a-labels').value = `{service.version=${quoteLabel(older.version)}}`;
  $('b-labels').value = `{service.version=${quoteLabel(newer.version)}}`;
  $('a-from').value = String(older.first_ns); $('a-until').value = String(older.last_ns + 1);
  $('b-from').value = String(newer.first_ns); $('b-until').value = String(newer.last_ns + 1);
  runDiff(diffFormParams());
}

async function exportView() {
  try {
    const safe = (state.service || 'profile').replace(/[^A-Za-z0-9_-]/g, '_');
    if (state.tab === 'diff' && state.diffParams) {
      await store.download('api/v1/export', { kind: 'diff', ...state.diffParams, max_nodes: MAX_NODES }, `flare-${safe}-diff.html`);
    } else if (state.source && state.source.kind === 'span') {
      const ids = state.source.withDescendants ? descendantIds(state.source.trace, state.source.span.span_id) : [state.source.span.span_id];
      await store.download('api/v1/export', { span_id: ids.slice(0, 1000).join(','), max_nodes: MAX_NODES, title: 'Flare: span ' + (state.source.span.name || '') }, `flare-span-${state.source.span.span_id}.html`);
    } else {
      await store.download('api/v1/export', { ...selectionParams(), max_nodes: MAX_NODES }, `flare-${safe}.html`);
    }
  } catch (e) { status(e.message, true); }
}

function writeHash() {
  const p = new URLSearchParams();
  if (state.service) p.set('service', state.service);
  if ($('labels').value.trim()) p.set('labels', $('labels').value.trim());
  const r = state.range;
  if (r.preset === 'custom') { p.set('from', String(r.from)); p.set('until', String(r.until)); } else p.set('range', r.preset);
  if (state.trace) p.set('trace', state.trace.trace_id);
  if (state.source && state.source.kind === 'span') p.set('span', state.source.span.span_id);
  history.replaceState(null, '', '#' + p.toString());
}

const chart = new TotalsChart($('totals'), (from, until) => {
  state.range = { preset: 'custom', from, until };
  $('range').value = 'custom';
  loadSelection();
});

async function startLive() {
  state.mode = 'live';
  try {
    const config = await store.json('ui/config.json');
    if (!state.template && config.trace_url_template) state.template = config.trace_url_template;
  } catch (e) { /* defaults */ }
  const hash = new URLSearchParams(location.hash.slice(1));
  let services = [];
  try { services = (await store.json('api/v1/services')).services; } catch (e) {
    status(e.status === 401 ? 'This store needs a query token: open Settings.' : e.message, true);
  }
  const select = clear($('service'));
  for (const s of services) select.append(el('option', { value: s.name }, s.name));
  state.service = hash.get('service') || (services[0] && services[0].name) || '';
  if (state.service && !services.some((s) => s.name === state.service)) select.append(el('option', { value: state.service }, state.service));
  select.value = state.service;
  if (hash.get('labels')) $('labels').value = hash.get('labels');
  if (hash.get('from') && hash.get('until')) { state.range = { preset: 'custom', from: hash.get('from'), until: hash.get('until') }; $('range').value = 'custom'; }
  else if (hash.get('range')) { state.range.preset = hash.get('range'); $('range').value = hash.get('range'); }
  checkVersions();
  loadLabelHints();
  if (hash.get('trace')) {
    await openTrace(hash.get('trace'), hash.get('span') || undefined);
    loadTraces();
  } else if (state.service) {
    await loadSelection();
  } else if (!services.length) {
    status('The store has no profiles yet: send some with flare agent, flare record or a Pyroscope client.');
  }
}

function startOffline(doc) {
  state.mode = 'offline';
  document.body.classList.add('offline');
  $('doc-title').textContent = doc.title || document.title;
  const model = showDocument(doc);
  showTab(model.isDiff ? 'diff' : 'flame');
  // Without a store, a flame graph has no second selection to diff, and a diff has no plain graph.
  document.querySelector(model.isDiff ? '#tabs button[data-tab="flame"]' : '#tabs button[data-tab="diff"]').hidden = true;
}

// MARK: Start

function wire() {
  for (const b of document.querySelectorAll('#tabs button')) b.addEventListener('click', () => {
    showTab(b.dataset.tab);
    if (b.dataset.tab === 'traces' && state.mode === 'live') loadTraces();
  });
  $('search').addEventListener('input', applySearch);
  $('orientation').addEventListener('change', setOrientation);
  $('color-mode').addEventListener('change', () => { for (const v of Object.values(views)) v.setColorMode($('color-mode').value); });
  document.addEventListener('keydown', onKey);
  $('help-button').addEventListener('click', () => $('help').showModal());
  $('help-close').addEventListener('click', () => $('help').close());
  $('selection').addEventListener('submit', (e) => {
    e.preventDefault();
    state.service = $('service').value;
    if ($('range').value !== 'custom') state.range = { preset: $('range').value, from: null, until: null };
    checkVersions();
    loadLabelHints();
    loadSelection();
  });
  $('diff-form').addEventListener('submit', (e) => { e.preventDefault(); runDiff(diffFormParams()); });
  $('compare').addEventListener('click', compareVersions);
  $('export').addEventListener('click', exportView);
  $('settings-button').addEventListener('click', () => {
    $('token').value = store.token;
    $('trace-template').value = state.template;
    $('settings').showModal();
  });
  $('settings-cancel').addEventListener('click', () => $('settings').close());
  $('settings-save').addEventListener('click', () => {
    store.setToken($('token').value.trim());
    const template = $('trace-template').value.trim();
    if (template && !traceLink(template, '0123456789abcdef0123456789abcdef', '0123456789abcdef')) {
      status('The trace link must be an http(s) URL containing {trace_id}.', true);
    } else {
      state.template = template;
      if (template) localStorage.setItem('flare.traceTemplate', template); else localStorage.removeItem('flare.traceTemplate');
      $('settings').close();
      startLive();
    }
  });
}

function start() {
  wire();
  const inline = document.getElementById('flare-data');
  if (inline) {
    let doc;
    try { doc = JSON.parse(inline.textContent); } catch (e) { status('The embedded profile is not valid JSON: ' + e.message, true); return; }
    state.timings.parsed = performance.now();
    startOffline(doc);
  } else {
    startLive();
  }
}

start();
