// Formatting, colours and DOM helpers shared by the viewer's modules.
// Every string from a profile or the store reaches the page through
// textContent (see el): symbol names and labels are attacker-controlled.

// Builds an element. Strings become text nodes, never markup.
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'class') node.className = value;
      else if (key === 'text') node.textContent = value;
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else if (key === 'dataset') Object.assign(node.dataset, value);
      // Through the CSSOM: the store's content security policy refuses style attributes.
      else if (key === 'style') node.style.cssText = value;
      else node.setAttribute(key, value === true ? '' : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

export function formatCount(v) {
  if (!isFinite(v)) return '0';
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toFixed(2) + 'G';
  if (a >= 1e6) return (v / 1e6).toFixed(2) + 'M';
  if (a >= 1e4) return (v / 1e3).toFixed(1) + 'k';
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

export function formatNanos(ns) {
  const a = Math.abs(ns);
  if (a >= 3600e9) return (ns / 3600e9).toFixed(2) + ' h';
  if (a >= 60e9) return (ns / 60e9).toFixed(2) + ' min';
  if (a >= 1e9) return (ns / 1e9).toFixed(2) + ' s';
  if (a >= 1e6) return (ns / 1e6).toFixed(1) + ' ms';
  if (a >= 1e3) return (ns / 1e3).toFixed(1) + ' µs';
  return Math.round(ns) + ' ns';
}

// A value in the document's unit ("samples" or "nanoseconds").
export function formatValue(v, unit) {
  return unit === 'nanoseconds' ? formatNanos(v) : formatCount(v) + (unit === 'samples' ? ' samples' : '');
}

export function formatPercent(part, whole) {
  if (!whole) return '0%';
  const p = 100 * part / whole;
  return (p >= 10 || p === 0 ? p.toFixed(1) : p.toFixed(2)) + '%';
}

export function formatTime(ns) {
  const d = new Date(ns / 1e6);
  return isNaN(d) ? '' : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

// A stable hue per string, so a package keeps its colour across views.
export function hashHue(text) {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return (h >>> 0) % 360;
}

// The package of a symbol: what comes before the last separator of a
// qualified name (Swift/Python/Java "a.b.f", C++/Rust "a::b::f", Go "pkg.(*T).f").
export function packageOf(name) {
  const paren = name.indexOf('(');
  const head = paren > 0 ? name.slice(0, paren) : name;
  const cpp = head.lastIndexOf('::');
  if (cpp > 0) return head.slice(0, head.indexOf('::'));
  const dot = head.indexOf('.');
  if (dot > 0 && !/^\d/.test(head)) return head.slice(0, dot);
  const plus = name.indexOf('+0x');
  if (plus > 0) return name.slice(0, plus);
  return name.startsWith('[') ? '[kernel/marker]' : name;
}

// The module of a frame: its source file's directory (or the binary of an
// unsymbolized address), else its package.
export function moduleOf(name, file) {
  if (file) {
    const slash = file.lastIndexOf('/');
    return slash > 0 ? file.slice(0, slash) : file;
  }
  const plus = name.indexOf('+0x');
  return plus > 0 ? name.slice(0, plus) : packageOf(name);
}

// A link to a trace in Jaeger or Tempo from a template with {trace_id} and
// {span_id}; null for anything but an http(s) URL (never javascript:, data:…).
export function traceLink(template, traceId, spanId) {
  if (!template || !/^[0-9a-f]{32}$/.test(traceId || '')) return null;
  const text = template.split('{trace_id}').join(encodeURIComponent(traceId))
    .split('{span_id}').join(encodeURIComponent(spanId || ''));
  let url;
  try { url = new URL(text); } catch (e) { return null; }
  return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
}

// A regular expression from the search box; a plain substring when it does not compile.
export function searchRegExp(text) {
  if (!text) return null;
  try { return new RegExp(text); } catch (e) {
    return new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  }
}

export function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
