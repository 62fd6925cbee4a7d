// The top-functions table (self and total, sortable, filterable) and the diff's
// ranked changes. Rows are built with textContent only; at most `limit` rows
// are in the DOM at once so that big profiles stay quick.

import { el, clear, formatValue, formatPercent, searchRegExp } from './format.js';

export class FunctionTable {
  // options: { onPick(nameIndex) }
  constructor(container, options = {}) {
    this.container = container;
    this.options = options;
    this.limit = 500;
    this.sortKey = 'self';
    this.descending = true;
    this.filter = '';
    this.rows = [];
    this.model = null;
    this.selected = -1;
    this.filterInput = el('input', { type: 'search', class: 'filter', placeholder: 'Filter functions (regex)', 'aria-label': 'Filter functions',
      oninput: () => { this.filter = this.filterInput.value; this.render(); } });
    this.summary = el('span', { class: 'muted' });
    this.table = el('table', { class: 'functions' });
    container.append(el('div', { class: 'table-tools' }, this.filterInput, this.summary), this.table);
  }

  // Rows are computed when first shown, so that a big profile's graph is drawn first.
  setModel(model) {
    this.model = model;
    this.rows = null;
    this.sortKey = model.isDiff ? 'self_delta' : 'self';
    this.descending = true;
    if (this.container.offsetParent !== null) this.render();
  }

  ensureRows() {
    const model = this.model;
    if (this.rows) return;
    this.rows = model.isDiff ? model.changes().map((c) => ({ ...c, label: c.name })) : model.topFunctions().map((r) => ({ ...r, label: model.names[r.name], file: model.sourceOf(r.name) }));
  }

  columns() {
    if (this.model.isDiff) {
      return [['label', 'Function'], ['self_a', 'Self A'], ['self_b', 'Self B'], ['self_delta', 'Self change'], ['total_delta', 'Total change']];
    }
    return [['label', 'Function'], ['self', 'Self'], ['total', 'Total']];
  }

  sorted() {
    const key = this.sortKey, sign = this.descending ? -1 : 1;
    const re = searchRegExp(this.filter);
    const rows = re ? this.rows.filter((r) => re.test(r.label)) : this.rows.slice();
    const magnitude = key.endsWith('_delta');
    rows.sort((a, b) => {
      const va = magnitude ? Math.abs(a[key]) : a[key], vb = magnitude ? Math.abs(b[key]) : b[key];
      if (va < vb) return -sign;
      if (va > vb) return sign;
      return a.label < b.label ? -1 : a.label > b.label ? 1 : 0;
    });
    return rows;
  }

  render() {
    if (!this.model) return;
    this.ensureRows();
    const m = this.model;
    clear(this.table);
    const head = el('tr');
    for (const [key, title] of this.columns()) {
      const arrow = this.sortKey === key ? (this.descending ? ' ▼' : ' ▲') : '';
      head.append(el('th', { class: key === 'label' ? '' : 'num', dataset: { key }, onclick: () => {
        if (this.sortKey === key) this.descending = !this.descending; else { this.sortKey = key; this.descending = key !== 'label'; }
        this.render();
      } }, title + arrow));
    }
    this.table.append(el('thead', null, head));
    const body = el('tbody');
    const rows = this.sorted();
    const whole = m.rootTotal;
    for (const r of rows.slice(0, this.limit)) {
      const tr = el('tr', { class: r.name === this.selected || r.label === this.selectedLabel ? 'selected' : '', onclick: () => this.pick(r) });
      tr.append(el('td', { class: 'fn', title: r.file ? r.label + ' — ' + r.file : r.label }, r.label, r.file ? el('span', { class: 'file' }, ' ' + r.file) : null));
      if (m.isDiff) {
        for (const key of ['self_a', 'self_b']) tr.append(el('td', { class: 'num' }, formatValue(r[key], m.unit)));
        for (const key of ['self_delta', 'total_delta']) {
          const v = r[key];
          tr.append(el('td', { class: 'num ' + (v > 0 ? 'grew' : v < 0 ? 'shrank' : '') }, (v > 0 ? '+' : '') + formatValue(v, m.unit)));
        }
      } else {
        tr.append(el('td', { class: 'num' }, formatValue(r.self, m.unit), el('span', { class: 'pct' }, ' ' + formatPercent(r.self, whole))));
        tr.append(el('td', { class: 'num' }, formatValue(r.total, m.unit), el('span', { class: 'pct' }, ' ' + formatPercent(r.total, whole))));
      }
      body.append(tr);
    }
    this.table.append(body);
    this.summary.textContent = `${rows.length} functions${rows.length > this.limit ? `, first ${this.limit} shown` : ''}`;
    this.visible = rows;
  }

  pick(row) {
    this.selected = typeof row.name === 'number' ? row.name : -1;
    this.selectedLabel = row.label;
    this.render();
    if (this.options.onPick) this.options.onPick(row.label);
  }

  select(label) {
    this.selectedLabel = label;
    this.selected = -1;
    this.render();
  }
}
