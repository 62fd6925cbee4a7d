// The store's HTTP API (docs/api.md), relative to the page, so the viewer
// works behind any prefix the store is served under.

export class StoreClient {
  constructor() {
    this.token = sessionStorage.getItem('flare.token') || '';
  }

  setToken(token) {
    this.token = token;
    if (token) sessionStorage.setItem('flare.token', token); else sessionStorage.removeItem('flare.token');
  }

  async request(path, params) {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(params || {})) {
      if (value === undefined || value === null || value === '') continue;
      if (Array.isArray(value)) value.forEach((v) => query.append(key, v)); else query.append(key, value);
    }
    const url = path + (query.toString() ? '?' + query : '');
    const headers = this.token ? { Authorization: 'Bearer ' + this.token } : {};
    const response = await fetch(url, { headers });
    return { response, url };
  }

  async json(path, params) {
    const { response } = await this.request(path, params);
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (!response.ok) {
      const error = new Error((body && body.error) || `${path} answered ${response.status}`);
      error.status = response.status;
      throw error;
    }
    return body;
  }

  // Fetches a download (with the token) and hands it to the browser as a file.
  async download(path, params, filename) {
    const { response } = await this.request(path, params);
    if (!response.ok) {
      let message = `${path} answered ${response.status}`;
      try { message = (await response.json()).error || message; } catch (e) { /* not JSON */ }
      throw new Error(message);
    }
    const blob = await response.blob();
    const link = document.createElement('a');
    link.href = URL.createObjectURL(blob);
    link.download = filename;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  }
}
