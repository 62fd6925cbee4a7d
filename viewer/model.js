// The call tree as typed arrays, laid out once from the columnar document
// (names stored once, nodes referring to them by index), plus what the views
// derive from it: search, top functions, sandwich trees and diff changes.

export class FlameModel {
  // doc: a /api/v1/flamegraph or /api/v1/diff document (or a tree built here).
  constructor(doc) {
    this.doc = doc;
    this.names = doc.names || ['total'];
    this.files = doc.files || [];
    this.lines = doc.lines || [];
    this.unit = doc.unit || 'samples';
    const nodes = doc.nodes;
    const n = nodes.name.length;
    this.count = n;
    this.name = Int32Array.from(nodes.name);
    this.parent = Int32Array.from(nodes.parent);
    this.isDiff = Array.isArray(nodes.total_a);
    if (this.isDiff) {
      // Widths come from the newer selection (B); A is kept for colours and tooltips.
      this.total = Float64Array.from(nodes.total_b);
      this.self = Float64Array.from(nodes.self_b);
      this.totalA = Float64Array.from(nodes.total_a);
      this.selfA = Float64Array.from(nodes.self_a);
    } else {
      this.total = Float64Array.from(nodes.total);
      this.self = Float64Array.from(nodes.self);
    }
    this.buildChildren();
    this.layout();
  }

  get rootTotal() { return this.count ? this.total[0] : 0; }

  // Children in compressed rows, each node's children ordered by name so
  // that the picture does not depend on the order stacks arrived in.
  buildChildren() {
    const n = this.count;
    const counts = new Int32Array(n + 1);
    for (let i = 1; i < n; i++) { const p = this.parent[i]; if (p >= 0 && p < n) counts[p + 1]++; }
    for (let i = 0; i < n; i++) counts[i + 1] += counts[i];
    this.childStart = counts;
    const fill = counts.slice(0, n);
    const children = new Int32Array(Math.max(0, n - 1));
    for (let i = 1; i < n; i++) { const p = this.parent[i]; if (p >= 0 && p < n) children[fill[p]++] = i; }
    const rank = this.nameRank();
    const name = this.name;
    for (let p = 0; p < n; p++) {
      const s = counts[p], e = counts[p + 1];
      if (e - s > 1) {
        const part = children.subarray(s, e);
        part.sort((a, b) => rank[name[a]] - rank[name[b]] || a - b);
      }
    }
    this.children = children;
  }

  nameRank() {
    const order = this.names.map((_, i) => i);
    const names = this.names;
    order.sort((a, b) => (names[a] < names[b] ? -1 : names[a] > names[b] ? 1 : 0));
    const rank = new Int32Array(names.length);
    order.forEach((nameIndex, r) => { rank[nameIndex] = r; });
    return rank;
  }

  // x: each node's left edge in value units from the root's; depth: its row.
  layout() {
    const n = this.count;
    this.x = new Float64Array(n);
    this.depth = new Int32Array(n);
    let maxDepth = 0;
    const stack = [0];
    while (stack.length) {
      const u = stack.pop();
      let cx = this.x[u];
      const d = this.depth[u] + 1;
      for (let k = this.childStart[u]; k < this.childStart[u + 1]; k++) {
        const c = this.children[k];
        this.x[c] = cx;
        this.depth[c] = d;
        if (d > maxDepth) maxDepth = d;
        cx += this.total[c];
        stack.push(c);
      }
    }
    this.maxDepth = maxDepth;
  }

  nameOf(node) { return this.names[this.name[node]] ?? '?'; }
  fileOf(node) { return this.sourceOf(this.name[node]); }

  // "file:line" of a name index (the line where the function starts), or just the file.
  sourceOf(nameIndex) {
    const file = this.files[nameIndex] ?? '', line = this.lines[nameIndex] ?? 0;
    return file && line > 0 ? file + ':' + line : file;
  }

  ancestors(node) {
    const path = [];
    for (let u = node; u >= 0; u = this.parent[u]) path.push(u);
    return path.reverse();
  }

  // Which names match, and the share of the total they cover: a stack counts
  // once however many of its frames match (matches nested under a match are
  // not added again).
  search(re) {
    const n = this.count;
    const nameMatch = new Uint8Array(this.names.length);
    if (re) this.names.forEach((text, i) => { re.lastIndex = 0; if (re.test(text)) nameMatch[i] = 1; });
    return this.markNames(nameMatch);
  }

  markNames(nameMatch) {
    const n = this.count;
    const match = new Uint8Array(n);
    const covered = new Uint8Array(n);
    let matched = 0, nodes = 0;
    // Parents before children is the document's order; walk the tree to be safe.
    const stack = [0];
    while (stack.length) {
      const u = stack.pop();
      const p = this.parent[u];
      const hit = u > 0 && nameMatch[this.name[u]] === 1;
      match[u] = hit ? 1 : 0;
      if (hit) nodes++;
      if (hit && !(p >= 0 && covered[p])) matched += this.total[u];
      covered[u] = hit || (p >= 0 && covered[p]) ? 1 : 0;
      for (let k = this.childStart[u]; k < this.childStart[u + 1]; k++) stack.push(this.children[k]);
    }
    return { match, nodes, matched, total: this.rootTotal, names: nameMatch };
  }

  // Per function: self, and total with a recursive function counted once per stack.
  topFunctions() {
    const names = this.names.length;
    const self = new Float64Array(names), total = new Float64Array(names), selfA = new Float64Array(names), totalA = new Float64Array(names);
    const onStack = new Int32Array(names);
    const stack = [0];
    const exit = [];
    while (stack.length) {
      const u = stack.pop();
      if (u < 0) { onStack[this.name[~u]]--; continue; }
      const f = this.name[u];
      if (u > 0) {
        self[f] += this.self[u];
        if (this.isDiff) selfA[f] += this.selfA[u];
        if (onStack[f] === 0) { total[f] += this.total[u]; if (this.isDiff) totalA[f] += this.totalA[u]; }
        onStack[f]++;
        stack.push(~u);
      }
      for (let k = this.childStart[u]; k < this.childStart[u + 1]; k++) stack.push(this.children[k]);
    }
    const rows = [];
    for (let f = 0; f < names; f++) {
      if (total[f] === 0 && self[f] === 0 && totalA[f] === 0 && selfA[f] === 0) continue;
      if (f === 0 && this.names[0] === 'total') continue;
      rows.push({ name: f, self: self[f], total: total[f], selfA: selfA[f], totalA: totalA[f] });
    }
    return rows;
  }

  // The outermost nodes of function f (not nested under another call of f).
  outermost(f) {
    const result = [];
    const stack = [0];
    while (stack.length) {
      const u = stack.pop();
      if (u > 0 && this.name[u] === f) { result.push(u); continue; }
      for (let k = this.childStart[u]; k < this.childStart[u + 1]; k++) stack.push(this.children[k]);
    }
    return result;
  }

  // Sandwich: what f calls, merged over every outermost call of f.
  calleesOf(f) {
    const builder = new TreeBuilder(this, f);
    for (const root of this.outermost(f)) {
      builder.addValue(0, this.total[root], this.self[root]);
      const stack = [[root, 0]];
      while (stack.length) {
        const [u, at] = stack.pop();
        for (let k = this.childStart[u]; k < this.childStart[u + 1]; k++) {
          const c = this.children[k];
          const node = builder.child(at, this.name[c]);
          builder.addValue(node, this.total[c], this.self[c]);
          stack.push([c, node]);
        }
      }
    }
    return builder.model();
  }

  // Sandwich: who calls f, each path from f up to the root, weighted by f's total there.
  callersOf(f) {
    const builder = new TreeBuilder(this, f);
    for (const root of this.outermost(f)) {
      const v = this.total[root];
      builder.addValue(0, v, 0);
      let at = 0;
      for (let u = this.parent[root]; u > 0; u = this.parent[u]) {
        at = builder.child(at, this.name[u]);
        builder.addValue(at, v, 0);
      }
      builder.addSelf(at, v);
    }
    return builder.model();
  }

  // A diff document's ranked changes, or computed from the tree for a document without them.
  changes() {
    if (Array.isArray(this.doc.functions)) return this.doc.functions.map((f) => ({ ...f, file: f.file && f.line > 0 ? f.file + ':' + f.line : f.file }));
    return this.topFunctions().map((r) => ({
      name: this.names[r.name], file: this.sourceOf(r.name),
      self_a: r.selfA, self_b: r.self, self_delta: r.self - r.selfA,
      total_a: r.totalA, total_b: r.total, total_delta: r.total - r.totalA,
    })).sort((a, b) => Math.abs(b.self_delta) - Math.abs(a.self_delta));
  }
}

// Builds a small tree (sandwich views) that reuses the model's name table.
class TreeBuilder {
  constructor(model, rootName) {
    this.source = model;
    this.names = [rootName];
    this.parents = [-1];
    this.totals = [0];
    this.selfs = [0];
    this.index = new Map();
  }

  child(parent, name) {
    const key = parent * 1048576 + name;
    let node = this.index.get(key);
    if (node === undefined) {
      node = this.names.length;
      this.names.push(name);
      this.parents.push(parent);
      this.totals.push(0);
      this.selfs.push(0);
      this.index.set(key, node);
    }
    return node;
  }

  addValue(node, total, self) { this.totals[node] += total; this.selfs[node] += self; }
  addSelf(node, self) { this.selfs[node] += self; }

  model() {
    const m = this.source;
    return new FlameModel({
      unit: m.unit, names: m.names, files: m.files, lines: m.lines,
      nodes: { name: this.names, parent: this.parents, total: this.totals, self: this.selfs },
    });
  }
}
