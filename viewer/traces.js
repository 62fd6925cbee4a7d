// Recent traces and one trace's waterfall: each span's duration as a bar and
// the CPU its samples account for inside it; clicking a span asks for the
// flame graph of exactly that span's samples.

import { el, clear, formatNanos, formatTime, formatCount, traceLink } from './format.js';

export function renderTraceList(container, traces, { onOpen, template }) {
  clear(container);
  if (!traces.length) {
    container.append(el('p', { class: 'muted' }, 'No traces in this range. Spans arrive over OTLP/HTTP at /v1/traces.'));
    return;
  }
  const table = el('table', { class: 'traces' },
    el('thead', null, el('tr', null, el('th', null, 'Root span'), el('th', null, 'Service'), el('th', null, 'Start'),
      el('th', { class: 'num' }, 'Duration'), el('th', { class: 'num' }, 'Spans'), el('th', { class: 'num' }, 'CPU samples'), el('th', null, ''))));
  const body = el('tbody');
  for (const t of traces) {
    const link = traceLink(template, t.trace_id, '');
    body.append(el('tr', { class: 'trace-row', dataset: { traceId: t.trace_id }, onclick: (e) => { if (e.target.tagName !== 'A') onOpen(t.trace_id); } },
      el('td', { class: 'fn' }, t.root_name || '(unnamed)'),
      el('td', null, t.root_service),
      el('td', null, formatTime(t.start_ns)),
      el('td', { class: 'num' }, formatNanos(t.duration_ns)),
      el('td', { class: 'num' }, String(t.spans)),
      el('td', { class: 'num' }, formatCount(t.samples) + (t.cpu_ns ? ` (${formatNanos(t.cpu_ns)})` : '')),
      el('td', null, link ? el('a', { href: link, target: '_blank', rel: 'noopener noreferrer' }, 'open trace ↗') : '')));
  }
  table.append(body);
  container.append(table);
}

export function renderWaterfall(container, trace, { onSpan, template, selected }) {
  clear(container);
  const spans = trace.spans || [];
  const link = traceLink(template, trace.trace_id, '');
  container.append(el('div', { class: 'waterfall-head' },
    el('strong', null, 'Trace '), el('code', null, trace.trace_id),
    link ? el('a', { href: link, target: '_blank', rel: 'noopener noreferrer', class: 'external' }, 'open in tracing UI ↗') : ''));
  if (!spans.length) container.append(el('p', { class: 'muted' }, 'The store holds samples of this trace but none of its spans.'));
  const start = Math.min(...spans.map((s) => s.start_ns));
  const end = Math.max(...spans.map((s) => s.end_ns));
  const length = Math.max(1, end - start);
  const list = el('div', { class: 'waterfall' });
  for (const s of spans) {
    const left = 100 * (s.start_ns - start) / length;
    const width = Math.max(0.2, 100 * s.duration_ns / length);
    // The CPU bar: the share of the span's wall time its own samples account for.
    const cpuShare = s.duration_ns > 0 ? Math.min(1, s.self.cpu_ns / s.duration_ns) : 0;
    const row = el('div', { class: 'span-row' + (s.span_id === selected ? ' selected' : ''), dataset: { spanId: s.span_id }, tabindex: 0,
      title: 'Show the flame graph of this span\'s samples', onclick: () => onSpan(s) },
      el('div', { class: 'span-label', style: `padding-left:${Math.min(s.depth, 20) * 12 + 4}px` },
        el('span', { class: 'span-name' }, s.name || '(unnamed)'), el('span', { class: 'muted' }, ' ' + s.service)),
      el('div', { class: 'span-track' },
        el('div', { class: 'span-bar' + (s.status_code === 2 ? ' error' : ''), style: `left:${left}%;width:${width}%` },
          el('div', { class: 'span-cpu', style: `width:${(cpuShare * 100).toFixed(1)}%` }))),
      el('div', { class: 'span-numbers' },
        el('span', null, formatNanos(s.duration_ns)),
        el('span', { class: 'cpu', title: 'CPU samples in this span alone / with its descendants' },
          `${formatCount(s.self.samples)} / ${formatCount(s.with_descendants.samples)} samples`)));
    list.append(row);
  }
  container.append(list);
  if ((trace.unknown_spans || []).length) {
    container.append(el('p', { class: 'muted' }, 'Samples from spans the store never received: ',
      ...trace.unknown_spans.map((u) => el('button', { class: 'linkish', onclick: () => onSpan({ span_id: u.span_id, name: u.span_id, unknown: true }) },
        `${u.span_id} (${formatCount(u.samples)})`))));
  }
}

// The span and its descendants, from a trace's span list (parent links may be missing).
export function descendantIds(trace, spanId) {
  const children = new Map();
  for (const s of trace.spans || []) {
    if (!children.has(s.parent_span_id)) children.set(s.parent_span_id, []);
    children.get(s.parent_span_id).push(s.span_id);
  }
  const result = [];
  const seen = new Set();
  const stack = [spanId];
  while (stack.length) {
    const id = stack.pop();
    if (seen.has(id)) continue;
    seen.add(id);
    result.push(id);
    for (const c of children.get(id) || []) stack.push(c);
  }
  return result;
}
