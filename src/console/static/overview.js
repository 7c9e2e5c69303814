// The overview panels: summary cards, the models table with its load/unload actions, and the
// alerts list with the thresholds form.
'use strict';
/* global state, poll, api, $, el, fmtNum, fmtBytes, fmtMs */
/* exported renderSummary, renderModels, renderAlerts, renderThresholds, wireThresholds */

// ------------------------------------------------------------ summary
function renderSummary(s) {
  var box = $('summary');
  box.textContent = '';
  var sys = s.system || {};
  var cards = [
    ['models watched', s.models_watched + ' / ' + s.models.total],
    ['replicas ready', s.replicas.ready + ' / ' + s.replicas.total],
    ['active alerts', s.active_alerts, s.active_alerts > 0],
    ['requests', fmtNum(s.totals.requests, 0)],
    ['failed requests', fmtNum(s.totals.failed_requests, 0), s.totals.failed_requests > 0],
    [
      'job + pipeline records',
      fmtNum(
        s.totals.requests_by_source
          ? s.totals.requests_by_source.job.sequences + s.totals.requests_by_source.pipeline.sequences
          : 0,
        0,
      ),
    ],
    ['worker memory', fmtBytes(s.totals.rss_bytes)],
    ['worker CPU', fmtNum(s.totals.cpu_percent) + '%'],
    [
      'disk (state dir)',
      sys.disk_percent === null || sys.disk_percent === undefined ? '–' : fmtNum(sys.disk_percent) + '%',
    ],
  ];
  cards.forEach(function (c) {
    var d = el('div', { class: 'card' + (c[2] ? ' bad' : '') });
    d.appendChild(el('span', null, c[0]));
    d.appendChild(el('b', null, c[1]));
    box.appendChild(d);
  });
}

// ------------------------------------------------------------ models table
function actionButton(name, action) {
  var b = el(
    'button',
    { type: 'button', 'data-action': action, 'data-model': name },
    action === 'load' ? 'Load' : 'Unload',
  );
  b.addEventListener('click', function () {
    modelAction(name, action);
  });
  return b;
}

function renderModels(models) {
  var body = document.querySelector('#models tbody');
  var seen = {};
  models.forEach(function (m) {
    seen[m.model] = true;
    var row = state.rows[m.model];
    if (!row) {
      row = { tr: el('tr', { 'data-model': m.model }), cells: {} };
      [
        'name',
        'version',
        'runtime',
        'state',
        'replicas',
        'cpu',
        'memory',
        'queue',
        'inflight',
        'requests',
        'errors',
        'p50',
        'p99',
        'actions',
      ].forEach(function (k) {
        var numeric =
          ['replicas', 'cpu', 'memory', 'queue', 'inflight', 'requests', 'errors', 'p50', 'p99'].indexOf(k) >= 0;
        var td = el('td', { class: k + (numeric ? ' num' : '') });
        row.cells[k] = td;
        row.tr.appendChild(td);
      });
      row.cells.actions.appendChild(actionButton(m.model, 'load'));
      row.cells.actions.appendChild(actionButton(m.model, 'unload'));
      state.rows[m.model] = row;
      body.appendChild(row.tr);
    }
    var c = row.cells;
    c.name.textContent = m.model;
    c.name.title = m.description || '';
    c.version.textContent = m.version;
    c.runtime.textContent = m.runtime + (m.isolation === 'inline' ? ' (inline)' : '');
    var busy = state.busy[m.model];
    c.state.textContent = busy ? busy : m.status;
    c.state.className = 'state ' + (busy ? 'working' : m.status);
    c.replicas.textContent = m.totals.ready + ' / ' + m.totals.replicas;
    c.cpu.textContent = m.totals.cpu_percent === null ? '–' : fmtNum(m.totals.cpu_percent) + '%';
    c.memory.textContent = fmtBytes(m.totals.rss_bytes);
    c.queue.textContent = m.queue_depth;
    c.inflight.textContent = m.in_flight;
    c.requests.textContent = fmtNum(m.requests.total, 0);
    c.errors.textContent = fmtNum(m.requests.failed, 0);
    c.p50.textContent = fmtMs(m.requests.p50_ms);
    c.p99.textContent = fmtMs(m.requests.p99_ms);
    var src = m.requests.by_source;
    c.requests.title = src
      ? ['api', 'job', 'pipeline']
          .map(function (k) {
            return k + ' ' + src[k].requests + ' (' + src[k].sequences + ' seq)';
          })
          .join(' · ')
      : '';
    // A model whose weights or host packages are not there yet: greyed, with what gets them
    // (no error, no alert).
    var waiting =
      m.status === 'needs_weights' && m.weights
        ? m.weights.hint
        : m.status === 'needs_packages' && m.requires
          ? m.requires.hint
          : '';
    row.tr.classList.toggle('needs-weights', m.status === 'needs_weights' || m.status === 'needs_packages');
    var hint = row.cells.state.querySelector('.hint');
    if (waiting) {
      if (!hint) hint = c.state.appendChild(el('span', { class: 'hint' }));
      hint.textContent = waiting;
    } else if (hint) hint.remove();
    var loaded = m.status === 'ready' || m.status === 'loading' || m.status === 'draining';
    row.tr.querySelector('button[data-action=load]').disabled =
      !!busy || m.status === 'ready' || m.status === 'loading';
    row.tr.querySelector('button[data-action=unload]').disabled = !!busy || (!loaded && m.status !== 'failed');
  });
  Object.keys(state.rows).forEach(function (name) {
    if (!seen[name]) {
      state.rows[name].tr.remove();
      delete state.rows[name];
    }
  });
}

function modelAction(name, action) {
  if (state.busy[name]) return;
  state.busy[name] = action === 'load' ? 'loading…' : 'unloading…';
  renderModels(state.models);
  $('action-status').textContent = (action === 'load' ? 'loading ' : 'unloading ') + name + '…';
  api('POST', '/v1/models/' + encodeURIComponent(name) + '/' + action, {}, true).then(
    function (r) {
      delete state.busy[name];
      $('action-status').textContent = r.env.success
        ? r.env.message
        : action + ' ' + name + ' failed: ' + (r.env.error ? r.env.error.code + ': ' : '') + r.env.message;
      poll();
    },
    function (e) {
      delete state.busy[name];
      $('action-status').textContent = action + ' ' + name + ' failed: ' + e.message;
      poll();
    },
  );
}

// ------------------------------------------------------------ alerts and thresholds
function renderAlerts(alerts) {
  var ul = $('alerts');
  ul.textContent = '';
  var seen = {};
  var list = alerts.active.concat(alerts.recent).filter(function (a) {
    if (seen[a.id]) return false;
    seen[a.id] = true;
    return true;
  });
  if (!list.length) {
    ul.appendChild(el('li', { class: 'none' }, 'no alerts'));
    return;
  }
  list.forEach(function (a) {
    var li = el('li', { class: a.state, 'data-alert': a.key });
    li.appendChild(el('b', null, a.state));
    li.appendChild(
      document.createTextNode(
        a.message +
          ' — ' +
          a.fired_at.replace('T', ' ').slice(0, 19) +
          (a.resolved_at
            ? ' → resolved ' +
              a.resolved_at.replace('T', ' ').slice(11, 19) +
              (a.resolution ? ' (' + a.resolution + ')' : '')
            : ''),
      ),
    );
    ul.appendChild(li);
  });
}

function renderThresholds(t) {
  // Follow changes made elsewhere, but never overwrite what the user is typing.
  if ($('thresholds-form').contains(document.activeElement)) return;
  $('th-cpu').value = t.cpu_percent;
  $('th-memory').value = t.memory_percent;
  $('th-disk').value = t.disk_percent;
}

// The thresholds form saves with the admin headers.
function wireThresholds() {
  $('thresholds-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var body = {
      cpu_percent: Number($('th-cpu').value),
      memory_percent: Number($('th-memory').value),
      disk_percent: Number($('th-disk').value),
    };
    api('PUT', '/v1/monitor/thresholds', body, true).then(function (r) {
      $('thresholds-status').textContent = r.env.success
        ? 'saved'
        : (r.env.error ? r.env.error.code + ': ' : '') + r.env.message;
    });
  });
}
