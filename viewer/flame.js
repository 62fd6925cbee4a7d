// The canvas flame graph: one pass over the visible nodes per draw, frames
// narrower than a pixel merged into one grey block per run of siblings (their
// descendants are never visited), so 100 000 nodes stay fluid.

import { el, clear, formatValue, formatPercent, hashHue, packageOf, moduleOf } from './format.js';

const ROW = 18;
const MIN_WIDTH = 1;       // pixels; narrower frames are merged
const FONT = '12px ui-monospace, "DejaVu Sans Mono", monospace';

export class FlameView {
  // options: { breadcrumbs: element, tooltip: element, onSelect(node), onZoom(node) }
  constructor(canvas, options = {}) {
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d');
    this.options = options;
    this.model = null;
    this.zoom = 0;
    this.orientation = options.orientation || 'icicle';
    this.colorMode = 'package';
    this.highlight = null;      // Uint8Array per node, or null
    this.selectedName = -1;
    this.drawn = { count: 0, node: new Int32Array(0), x: new Float32Array(0), w: new Float32Array(0), depth: new Int32Array(0) };
    this.colorCache = new Map();
    this.hover = -1;
    canvas.addEventListener('mousemove', (e) => this.onMove(e));
    canvas.addEventListener('mouseleave', () => this.hideTooltip());
    canvas.addEventListener('click', (e) => this.onClick(e));
    this.resizeObserver = new ResizeObserver(() => { if (this.model && this.canvas.clientWidth !== this.lastWidth) this.draw(); });
    this.resizeObserver.observe(canvas);
  }

  setModel(model) {
    this.model = model;
    this.zoom = 0;
    this.highlight = null;
    this.selectedName = -1;
    this.colorCache.clear();
    this.draw();
  }

  setOrientation(o) { this.orientation = o; this.draw(); }
  setColorMode(mode) { this.colorMode = mode; this.colorCache.clear(); this.draw(); }
  setHighlight(mask) { this.highlight = mask; this.draw(); }

  zoomTo(node) {
    if (!this.model || node < 0 || node >= this.model.count) return;
    this.zoom = node;
    this.draw();
    if (this.options.onZoom) this.options.onZoom(node);
  }

  reset() { this.zoomTo(0); }
  zoomOut() { if (this.model && this.zoom > 0) this.zoomTo(this.model.parent[this.zoom]); }

  draw() {
    const m = this.model;
    const canvas = this.canvas;
    const ctx = this.ctx;
    const dpr = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || canvas.parentElement.clientWidth || 800;
    this.lastWidth = width;
    const rows = m ? m.maxDepth + 1 : 1;
    const height = rows * ROW;
    if (canvas.width !== Math.round(width * dpr) || canvas.height !== Math.round(height * dpr)) {
      canvas.width = Math.round(width * dpr);
      canvas.height = Math.round(height * dpr);
      canvas.style.height = height + 'px';
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    this.renderBreadcrumbs();
    if (!m || m.count === 0 || m.total[this.zoom] <= 0) { this.drawn.count = 0; return; }
    ctx.font = FONT;
    if (!this.charWidth) this.charWidth = ctx.measureText('MMMMMMMMMM').width / 10;
    ctx.textBaseline = 'middle';

    const z = this.zoom;
    const scale = width / m.total[z];
    const x0 = m.x[z];
    this.reserve(Math.min(m.count + 64, 1 << 20));
    const d = this.drawn;
    d.count = 0;

    // The zoomed node's ancestors, full width and dimmed: where this subtree sits.
    for (let u = m.parent[z]; u >= 0; u = m.parent[u]) this.rect(u, 0, width, m.depth[u], true);

    const stack = [z];
    const childStart = m.childStart, children = m.children, total = m.total, xs = m.x;
    while (stack.length) {
      const u = stack.pop();
      const left = (xs[u] - x0) * scale;
      const w = total[u] * scale;
      this.rect(u, left, w, m.depth[u], false);
      let runLeft = 0, runWidth = 0;
      for (let k = childStart[u]; k < childStart[u + 1]; k++) {
        const c = children[k];
        const cw = total[c] * scale;
        if (cw < MIN_WIDTH) {
          if (runWidth === 0) runLeft = (xs[c] - x0) * scale;
          runWidth = (xs[c] - x0) * scale + cw - runLeft;
          continue;
        }
        if (runWidth > 0) { this.merged(u, runLeft, runWidth, m.depth[u] + 1); runWidth = 0; }
        stack.push(c);
      }
      if (runWidth > 0) this.merged(u, runLeft, runWidth, m.depth[u] + 1);
    }
    if (window.flare) window.flare.lastDraw = performance.now();
  }

  reserve(n) {
    const d = this.drawn;
    if (d.node.length >= n) return;
    d.node = new Int32Array(n); d.x = new Float32Array(n); d.w = new Float32Array(n); d.depth = new Int32Array(n);
  }

  record(node, x, w, depth) {
    const d = this.drawn;
    if (d.count >= d.node.length) {
      const grow = (a, C) => { const b = new C(a.length * 2); b.set(a); return b; };
      d.node = grow(d.node, Int32Array); d.x = grow(d.x, Float32Array); d.w = grow(d.w, Float32Array); d.depth = grow(d.depth, Int32Array);
    }
    d.node[d.count] = node; d.x[d.count] = x; d.w[d.count] = w; d.depth[d.count] = depth;
    d.count++;
  }

  y(depth) { return this.orientation === 'flame' ? (this.model.maxDepth - depth) * ROW : depth * ROW; }

  rect(u, x, w, depth, dimmed) {
    const ctx = this.ctx;
    const m = this.model;
    const y = this.y(depth);
    const matched = this.highlight && this.highlight[u];
    ctx.fillStyle = matched ? '#d81bd8' : this.color(u);
    ctx.globalAlpha = dimmed || (this.highlight && !matched && u > 0) ? 0.45 : 1;
    ctx.fillRect(x, y, Math.max(w - 1, 0.5), ROW - 1);
    ctx.globalAlpha = 1;
    this.record(u, x, w, depth);
    if (w > 4 * this.charWidth) {
      const chars = Math.floor((w - 6) / this.charWidth);
      let label = m.nameOf(u);
      if (label.length > chars) label = label.slice(0, Math.max(1, chars - 1)) + '…';
      ctx.fillStyle = matched ? '#fff' : '#111';
      ctx.fillText(label, x + 3, y + ROW / 2);
    }
    if (this.selectedName >= 0 && m.name[u] === this.selectedName && u > 0) {
      ctx.strokeStyle = '#000';
      ctx.lineWidth = 2;
      ctx.strokeRect(x + 1, y + 1, Math.max(w - 3, 0.5), ROW - 3);
    }
  }

  // Siblings too narrow to see, as one block; hovering it tells what it stands for.
  merged(parent, x, w, depth) {
    if (w < 0.5) return;
    const ctx = this.ctx;
    ctx.fillStyle = '#b8b8b8';
    ctx.fillRect(x, this.y(depth), Math.max(w - 0.5, 0.5), ROW - 1);
    this.record(~parent, x, w, depth);
  }

  color(u) {
    const m = this.model;
    if (u === 0) return '#d9d9d9';
    if (m.isDiff) return diffColor(m.totalA[u], m.total[u]);
    const key = m.name[u];
    let c = this.colorCache.get(key);
    if (c === undefined) {
      const name = m.names[key], file = m.files[key] || '';
      const group = this.colorMode === 'module' ? moduleOf(name, file) : packageOf(name);
      const hue = hashHue(group);
      // Warm hues for most code, as flame graphs traditionally are; cool for the kernel and markers.
      const h = name.startsWith('[') ? 200 + hue % 40 : hue % 60;
      c = `hsl(${h}, ${60 + hue % 30}%, ${62 + hue % 12}%)`;
      this.colorCache.set(key, c);
    }
    return c;
  }

  hitTest(e) {
    const rect = this.canvas.getBoundingClientRect();
    const mx = e.clientX - rect.left, my = e.clientY - rect.top;
    const row = Math.floor(my / ROW);
    const depth = this.orientation === 'flame' ? this.model.maxDepth - row : row;
    const d = this.drawn;
    for (let i = d.count - 1; i >= 0; i--) {
      if (d.depth[i] === depth && mx >= d.x[i] && mx < d.x[i] + d.w[i]) return { node: d.node[i], x: mx, y: my };
    }
    return null;
  }

  onMove(e) {
    if (!this.model) return;
    const hit = this.hitTest(e);
    if (!hit) { this.hideTooltip(); this.canvas.style.cursor = 'default'; return; }
    this.canvas.style.cursor = 'pointer';
    this.showTooltip(hit.node, e);
  }

  onClick(e) {
    if (!this.model) return;
    const hit = this.hitTest(e);
    if (!hit) return;
    const node = hit.node < 0 ? ~hit.node : hit.node;
    this.selectedName = node > 0 ? this.model.name[node] : -1;
    this.zoomTo(node);
    if (this.options.onSelect) this.options.onSelect(node);
  }

  tooltipLines(node) {
    const m = this.model;
    const unit = m.unit;
    const whole = m.rootTotal;
    if (node < 0) {
      const parent = ~node;
      let count = 0, value = 0;
      const scale = this.canvas.clientWidth / m.total[this.zoom];
      for (let k = m.childStart[parent]; k < m.childStart[parent + 1]; k++) {
        const c = m.children[k];
        if (m.total[c] * scale < MIN_WIDTH) { count++; value += m.total[c]; }
      }
      return [[`${count} frames too narrow to show`, 'name'], [`called from ${m.nameOf(parent)}`, ''],
              [`total ${formatValue(value, unit)} (${formatPercent(value, whole)})`, ''], ['click to zoom into the caller', 'hint']];
    }
    const lines = [[m.nameOf(node), 'name']];
    const file = m.fileOf(node);
    if (file) lines.push([file, 'file']);
    if (m.isDiff) {
      const a = m.totalA[node], b = m.total[node];
      lines.push([`before (A): total ${formatValue(a, unit)}, self ${formatValue(m.selfA[node], unit)}`, '']);
      lines.push([`after (B): total ${formatValue(b, unit)}, self ${formatValue(m.self[node], unit)}`, '']);
      lines.push([`change: ${b - a >= 0 ? '+' : ''}${formatValue(b - a, unit)} (${a > 0 ? ((b - a) / a * 100).toFixed(1) + '%' : 'new'})`, '']);
    } else {
      lines.push([`self ${formatValue(m.self[node], unit)} (${formatPercent(m.self[node], whole)})`, '']);
      lines.push([`total ${formatValue(m.total[node], unit)} (${formatPercent(m.total[node], whole)})`, '']);
    }
    return lines;
  }

  showTooltip(node, e) {
    const tip = this.options.tooltip;
    if (!tip) return;
    clear(tip);
    for (const [text, cls] of this.tooltipLines(node)) tip.append(el('div', { class: cls, text }));
    tip.hidden = false;
    const pad = 14;
    let left = e.clientX + pad, top = e.clientY + pad;
    const r = tip.getBoundingClientRect();
    if (left + r.width > window.innerWidth) left = Math.max(0, e.clientX - r.width - pad);
    if (top + r.height > window.innerHeight) top = Math.max(0, e.clientY - r.height - pad);
    tip.style.left = left + 'px';
    tip.style.top = top + 'px';
  }

  hideTooltip() { if (this.options.tooltip) this.options.tooltip.hidden = true; }

  renderBreadcrumbs() {
    const bar = this.options.breadcrumbs;
    if (!bar) return;
    clear(bar);
    if (!this.model) return;
    const path = this.model.ancestors(this.zoom);
    bar.append(el('button', { class: 'crumb reset', title: 'Reset zoom (Esc)', onclick: () => this.reset() }, 'Reset'));
    path.forEach((u, i) => {
      if (i === 0) return;
      bar.append(el('span', { class: 'sep' }, '›'),
        el('button', { class: 'crumb', title: this.model.nameOf(u), onclick: () => this.zoomTo(u) }, this.model.nameOf(u)));
    });
  }
}

// Red grew, blue shrank, by the node's relative change; grey for no change.
export function diffColor(a, b) {
  const base = Math.max(a, b);
  if (base <= 0) return '#ddd';
  const r = (b - a) / base;
  if (Math.abs(r) < 0.02) return 'hsl(0, 0%, 85%)';
  const s = Math.round(35 + 60 * Math.min(1, Math.abs(r)));
  const l = Math.round(85 - 30 * Math.min(1, Math.abs(r)));
  return r > 0 ? `hsl(0, ${s}%, ${l}%)` : `hsl(215, ${s}%, ${l}%)`;
}
