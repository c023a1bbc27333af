// The kube-gtm topology page: draws the model the operator sends over server-sent events
// (`events`, relative to this page, so that it works under any proxy path), and redraws it on
// every update without a reload. Text goes into the page as text nodes only, never as markup.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);

  const LABELS = {
    NoAnswer: 'no answer',
    FailOpen: 'fail-open',
    FailedOver: 'failed over',
    Degraded: 'degraded',
    NotServing: 'not serving',
    Healthy: 'healthy',
    Available: 'available',
    Unavailable: 'unavailable',
    Disabled: 'disabled',
    Unknown: 'unknown',
    Missing: 'missing',
    Up: 'up',
    Down: 'down',
  };
  const SOURCES = {
    Local: 'local mode',
    Leader: 'leader',
    Standby: 'standby replica: statuses as the leader last wrote them',
  };

  // The <details> a viewer opened, kept open across redraws.
  const opened = new Set();
  let stream = null;

  // An element with attributes and children; strings become text nodes.
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === 'class') e.className = value;
      else e.setAttribute(name, String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      e.append(child instanceof Node ? child : String(child));
    }
    return e;
  }

  function label(state) {
    return LABELS[state] || String(state);
  }

  function badge(state) {
    return el('span', { class: 'badge s-' + state }, label(state));
  }

  function when(time) {
    if (!time) return '';
    const date = new Date(time);
    const seconds = Math.round((Date.now() - date.getTime()) / 1000);
    let ago;
    if (seconds < 60) ago = Math.max(seconds, 0) + ' s ago';
    else if (seconds < 3600) ago = Math.round(seconds / 60) + ' min ago';
    else if (seconds < 86400) ago = Math.round(seconds / 3600) + ' h ago';
    else ago = Math.round(seconds / 86400) + ' d ago';
    return el('time', { datetime: time, title: date.toLocaleString() }, ago);
  }

  function filters() {
    const p = new URLSearchParams(location.search);
    return { namespace: p.get('namespace') || '', state: p.get('state') || 'All', q: p.get('q') || '' };
  }

  function query(f) {
    const p = new URLSearchParams();
    if (f.namespace) p.set('namespace', f.namespace);
    if (f.state && f.state !== 'All') p.set('state', f.state);
    if (f.q) p.set('q', f.q);
    const s = p.toString();
    return s ? '?' + s : '';
  }

  function setLive(state) {
    const live = $('live');
    live.dataset.live = state;
    live.textContent = state;
  }

  // (Re)opens the event stream for the filters in the address bar.
  function connect() {
    if (stream) stream.close();
    setLive('connecting');
    stream = new EventSource('events' + query(filters()));
    stream.addEventListener('topology', (event) => {
      setLive('live');
      draw(JSON.parse(event.data));
    });
    stream.addEventListener('pending', (event) => {
      setLive('live');
      $('domains').replaceChildren(el('p', { class: 'empty' }, event.data));
    });
    // EventSource reconnects by itself; the page says so meanwhile.
    stream.onerror = () => setLive('reconnecting');
  }

  function applyFilters(change) {
    const f = Object.assign(filters(), change);
    history.replaceState(null, '', query(f) || location.pathname);
    connect();
  }

  function historyList(id, entries) {
    if (!entries || entries.length === 0) return null;
    const details = el(
      'details',
      { class: 'history', 'data-history': id },
      el('summary', {}, 'history (' + entries.length + ')'),
      el(
        'ol',
        {},
        entries.map((e) =>
          el(
            'li',
            {},
            when(e.time),
            ' ',
            el('strong', {}, e.reason),
            ' ',
            el('span', { class: 'from-to' }, e.from + ' → ' + e.to),
            e.message ? el('span', { class: 'message' }, e.message) : null,
          ),
        ),
      ),
    );
    details.open = opened.has(id);
    details.addEventListener('toggle', () => (details.open ? opened.add(id) : opened.delete(id)));
    return details;
  }

  function taskItem(t) {
    const name = t.template + (t.port ? ':' + t.port : '') + (t.protocol ? ' (' + t.protocol + ')' : '');
    const remote = t.locations.length > 1;
    return el(
      'li',
      { class: 'task s-' + t.state },
      el('span', { class: 'dot s-' + t.state, title: label(t.state) }),
      el('span', { class: 'task-name' }, name),
      ' ',
      label(t.state),
      t.latencyMillis != null && t.state === 'Up' ? el('span', { class: 'latency' }, t.latencyMillis + ' ms') : null,
      t.lastError && t.state !== 'Up' ? el('span', { class: 'error' }, t.lastError) : null,
      remote
        ? el(
            'ul',
            { class: 'locations' },
            t.locations.map((l) =>
              el(
                'li',
                { class: l.fresh ? '' : 'stale' },
                el('span', { class: 'dot s-' + l.state }),
                l.location + ': ' + label(l.state),
                l.fresh ? '' : ' (stale, abstains)',
                l.latencyMillis != null ? el('span', { class: 'latency' }, l.latencyMillis + ' ms') : null,
                l.lastError && l.state !== 'Up' ? el('span', { class: 'error' }, l.lastError) : null,
              ),
            ),
          )
        : null,
    );
  }

  function addressRow(a) {
    const notes = [];
    if (!a.enabled) notes.push('disabled');
    if (a.mode !== 'Auto') notes.push(a.mode);
    return el(
      'tr',
      { class: (a.answered ? 'answered ' : '') + 's-' + a.state, 'data-address': a.value, 'data-answered': String(a.answered) },
      el('td', { class: 'address' }, el('span', { class: 'dot s-' + (a.available ? 'Up' : 'Down') }), a.value,
        a.remark ? el('span', { class: 'remark' }, a.remark) : null),
      el('td', {}, a.available ? 'available' : 'unavailable', ' ', when(a.since)),
      el('td', {}, a.answered ? el('span', { class: 'tag answering' }, 'in the answer') : ''),
      el('td', { class: 'meta' }, 'order ' + a.order + ' · weight ' + a.weight, notes.length ? ' · ' + notes.join(', ') : ''),
      el('td', {}, a.tasks.length ? el('ul', { class: 'tasks' }, a.tasks.map(taskItem)) : el('span', { class: 'meta' }, 'no checks: counts as up')),
    );
  }

  function poolCard(domainId, p) {
    const counts = p.totalAddresses != null ? p.availableAddresses + '/' + p.totalAddresses + ' available' : '';
    return el(
      'div',
      { class: 'pool s-' + p.state + (p.answering ? ' answering' : ''), 'data-pool': p.name, 'data-pool-state': p.state, 'data-answering': String(p.answering) },
      el(
        'div',
        { class: 'pool-head' },
        el('span', { class: 'order', title: 'order in the domain' }, '#' + p.order),
        el('strong', {}, p.name),
        badge(p.state),
        p.answering ? el('span', { class: 'tag answering' }, p.failOpen ? 'answering: fail-open, every address' : 'answering') : null,
        el('span', { class: 'meta' }, [p.poolType, p.policy, counts, 'weight ' + p.weight].filter(Boolean).join(' · ')),
        p.activeAddress ? el('span', { class: 'meta' }, 'active: ' + p.activeAddress) : null,
      ),
      el('p', { class: 'why' }, p.why),
      p.addresses.length ? el('table', { class: 'addresses' }, el('tbody', {}, p.addresses.map(addressRow))) : null,
      historyList(domainId + '|' + p.name, p.history),
    );
  }

  function domainCard(d) {
    const id = d.namespace + '/' + d.name;
    const last = d.history[0];
    return el(
      'section',
      { class: 'domain s-' + d.state, 'data-domain': id, 'data-state': d.state },
      el(
        'header',
        {},
        el('h2', {}, d.fqdn),
        el('span', { class: 'rtype' }, d.recordType),
        badge(d.state),
        el('span', { class: 'meta' }, id + ' · ' + d.policy + ' · TTL ' + d.ttl + ' s'),
      ),
      el(
        'p',
        { class: 'why' },
        d.why,
        last ? el('span', { class: 'last' }, ' · last: ', el('strong', {}, last.reason), ' ', when(last.time)) : null,
      ),
      el('div', { class: 'pools' }, d.pools.map((p) => poolCard(id, p))),
      historyList(id, d.history),
    );
  }

  function drawFilters(t) {
    const f = filters();
    const ns = $('namespace');
    const names = [''].concat(t.namespaces);
    if (f.namespace && !names.includes(f.namespace)) names.push(f.namespace);
    ns.replaceChildren(...names.map((n) => el('option', { value: n }, n || 'all')));
    ns.value = f.namespace;
    $('state').value = f.state;
    if (document.activeElement !== $('q')) $('q').value = f.q;
    $('counts').replaceChildren(
      ...Object.entries(t.counts).map(([state, n]) => {
        const b = el('button', { type: 'button', class: 'count s-' + state, title: 'show only these' }, n + ' ' + label(state));
        b.addEventListener('click', () => applyFilters({ state: state }));
        return b;
      }),
    );
  }

  function draw(t) {
    $('source').textContent = SOURCES[t.source] || t.source;
    $('taken').replaceChildren('as of ', when(t.taken));
    drawFilters(t);
    const cards = t.domains.map(domainCard);
    if (cards.length === 0) cards.push(el('p', { class: 'empty' }, 'No access domain matches.'));
    if (t.matching > t.domains.length) {
      cards.push(el('p', { class: 'empty' }, 'Showing ' + t.domains.length + ' of ' + t.matching + ' access domains: narrow the filter.'));
    }
    $('domains').replaceChildren(...cards);
    document.body.dataset.taken = t.taken;
  }

  function start() {
    $('namespace').addEventListener('change', (e) => applyFilters({ namespace: e.target.value }));
    $('state').addEventListener('change', (e) => applyFilters({ state: e.target.value }));
    let typing = null;
    $('q').addEventListener('input', (e) => {
      clearTimeout(typing);
      typing = setTimeout(() => applyFilters({ q: e.target.value }), 300);
    });
    connect();
  }

  start();
})();
