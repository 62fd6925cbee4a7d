// Totals over time as bars; dragging across the chart picks a time range.

import { formatTime, formatCount } from './format.js';

export class TotalsChart {
  // onRange(fromNs, untilNs) is called when a drag ends.
  constructor(canvas, onRange) {
    this.canvas = canvas;
    this.onRange = onRange;
    this.data = null;
    this.drag = null;
    canvas.addEventListener('mousedown', (e) => { if (this.data) { this.drag = { start: this.xOf(e), end: this.xOf(e) }; this.draw(); } });
    canvas.addEventListener('mousemove', (e) => {
      if (this.drag) { this.drag.end = this.xOf(e); this.draw(); }
      else if (this.data) canvas.title = this.describe(this.xOf(e));
    });
    window.addEventListener('mouseup', () => {
      if (!this.drag) return;
      const { start, end } = this.drag;
      this.drag = null;
      this.draw();
      if (Math.abs(end - start) < 3) return;
      const a = this.timeAt(Math.min(start, end)), b = this.timeAt(Math.max(start, end));
      if (this.onRange) this.onRange(Math.floor(a), Math.ceil(b));
    });
  }

  xOf(e) { return e.clientX - this.canvas.getBoundingClientRect().left; }

  timeAt(x) {
    const d = this.data;
    const w = this.canvas.clientWidth;
    return d.from_ns + (d.until_ns - d.from_ns) * Math.max(0, Math.min(1, x / w));
  }

  describe(x) {
    const t = this.timeAt(x);
    const d = this.data;
    const i = Math.floor((t - d.from_ns) / d.step_ns);
    const p = d.points[i];
    return p ? `${formatTime(p[0])}: ${formatCount(p[1])} samples` : '';
  }

  setData(data) { this.data = data; this.draw(); }

  draw() {
    const c = this.canvas, ctx = c.getContext('2d');
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth || 600, h = c.clientHeight || 60;
    c.width = Math.round(w * dpr); c.height = Math.round(h * dpr);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const d = this.data;
    if (!d || !d.points.length) return;
    const max = Math.max(1, ...d.points.map((p) => p[1]));
    const bw = w / d.points.length;
    ctx.fillStyle = '#e8743b';
    d.points.forEach((p, i) => {
      const bh = (h - 14) * p[1] / max;
      ctx.fillRect(i * bw, h - 12 - bh, Math.max(1, bw - 0.5), bh);
    });
    ctx.fillStyle = '#555';
    ctx.font = '10px sans-serif';
    ctx.fillText(formatTime(d.from_ns), 2, h - 2);
    const end = formatTime(d.until_ns);
    ctx.fillText(end, w - ctx.measureText(end).width - 2, h - 2);
    if (this.drag) {
      ctx.fillStyle = 'rgba(40, 90, 200, 0.25)';
      ctx.fillRect(Math.min(this.drag.start, this.drag.end), 0, Math.abs(this.drag.end - this.drag.start), h);
    }
  }
}
