(function () {
  'use strict';
  var params = new URLSearchParams(location.search);
  var POLL_MS = Math.max(200, Number(params.get('poll')) || 3000);
  var KEEP = 90;
  var COLORS = ['#2563eb', '#dc2626', '#059669', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#4b5563'];
  var SVGNS = 'http://www.w3.org/2000/svg';
  var state = { rows: {}, prev: {}, series: {}, busy: {}, models: [], modelNames: '', timer: null, polls: 0 };

  // The API key typed in the header (kept for this tab only) goes with every call: a gateway
  // with keys wants the predict scope for reads and predictions.
  var KEY_STORE = 'isomodel.console.key';
  function apiKey() {
    try {
      return sessionStorage.getItem(KEY_STORE) || '';
    } catch (e) {
      return '';
    }
  }
  function authHeaders() {
    var key = apiKey();
    return key ? { authorization: 'Bearer ' + key } : {};
  }

  // ADMIN HOOK: every call that changes the gateway (load, unload, thresholds) takes its
  // headers from here. Today it is the same key as above, which then needs the admin scope;
  // a separate admin key or a confirmation step would go here.
  function adminHeaders() {
    return authHeaders();
  }

  // An answer as {status, env}: the envelope, or one made up when the body is not JSON.
  function answerOf(res) {
    return res.text().then(function (text) {
      var env;
      try {
        env = JSON.parse(text);
      } catch (e) {
        env = { success: false, message: text || res.statusText, error: { code: 'HTTP_' + res.status } };
      }
      return { status: res.status, env: env };
    });
  }

  function api(method, path, body, admin) {
    var headers = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    var extra = admin ? adminHeaders() : authHeaders();
    for (var k in extra) headers[k] = extra[k];
    return fetch(path, {
      method: method,
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    }).then(answerOf);
  }

  function $(id) {
    return document.getElementById(id);
  }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function svg(tag, attrs, text) {
    var e = document.createElementNS(SVGNS, tag);
    if (attrs) for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = String(text);
    return e;
  }
  function fmtNum(v, digits) {
    if (v === null || v === undefined || isNaN(v)) return '–';
    if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
    return String(
      Math.round(v * Math.pow(10, digits === undefined ? 1 : digits)) / Math.pow(10, digits === undefined ? 1 : digits),
    );
  }
  function fmtBytes(b) {
    if (b === null || b === undefined) return '–';
    if (b >= 1073741824) return (b / 1073741824).toFixed(2) + ' GB';
    return (b / 1048576).toFixed(1) + ' MB';
  }
  function fmtMs(v) {
    return v === null || v === undefined ? '–' : fmtNum(v, v < 10 ? 2 : 1) + ' ms';
  }
  function colorOf(name) {
    var i = state.models
      .map(function (m) {
        return m.model;
      })
      .indexOf(name);
    return COLORS[(i < 0 ? 0 : i) % COLORS.length];
  }

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

  // ------------------------------------------------------------ live charts
  function updateSeries(models) {
    var now = Date.now();
    models.forEach(function (m) {
      var prev = state.prev[m.model];
      var total = m.requests.total;
      var rps = null;
      if (prev && now > prev.t) rps = total >= prev.total ? (total - prev.total) / ((now - prev.t) / 1000) : 0;
      state.prev[m.model] = { t: now, total: total };
      var s = state.series[m.model] || (state.series[m.model] = []);
      s.push({ t: now, rps: rps, p50: m.requests.p50_ms, p99: m.requests.p99_ms, queue: m.queue_depth });
      if (s.length > KEEP) s.shift();
    });
  }

  function niceMax(v) {
    if (!(v > 0)) return 1;
    var mag = Math.pow(10, Math.floor(Math.log10(v)));
    var steps = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < steps.length; i++) if (v <= steps[i] * mag) return steps[i] * mag;
    return 10 * mag;
  }

  function drawChart(id, lines) {
    var box = $(id);
    while (box.firstChild) box.removeChild(box.firstChild);
    var W = 420,
      H = 180,
      L = 44,
      R = 8,
      T = 8,
      B = 22;
    var now = Date.now(),
      span = POLL_MS * KEEP;
    var max = 0;
    lines.forEach(function (ln) {
      ln.points.forEach(function (p) {
        if (p.y !== null && p.y > max) max = p.y;
      });
    });
    max = niceMax(max);
    var X = function (t) {
      return L + (1 - (now - t) / span) * (W - L - R);
    };
    var Y = function (v) {
      return T + (1 - v / max) * (H - T - B);
    };
    for (var i = 0; i <= 4; i++) {
      var v = (max * i) / 4;
      box.appendChild(svg('line', { x1: L, x2: W - R, y1: Y(v), y2: Y(v), class: 'grid' }));
      box.appendChild(svg('text', { x: L - 4, y: Y(v) + 3, 'text-anchor': 'end', class: 'axis' }, fmtNum(v, 2)));
    }
    [0, 0.5, 1].forEach(function (f) {
      var t = now - span * (1 - f);
      box.appendChild(
        svg(
          'text',
          { x: X(t), y: H - 6, 'text-anchor': f === 0 ? 'start' : f === 1 ? 'end' : 'middle', class: 'axis' },
          f === 1 ? 'now' : '-' + Math.round((span * (1 - f)) / 1000) + 's',
        ),
      );
    });
    var drawn = 0;
    lines.forEach(function (ln) {
      var d = '',
        pen = false;
      ln.points.forEach(function (p) {
        if (p.y === null || p.y === undefined || now - p.t > span) {
          pen = false;
          return;
        }
        d += (pen ? 'L' : 'M') + X(p.t).toFixed(1) + ',' + Y(p.y).toFixed(1);
        pen = true;
      });
      if (!d) return;
      var path = svg('path', {
        d: d,
        stroke: ln.color,
        class: 'line' + (ln.dashed ? ' dash' : ''),
        'data-series': ln.name,
      });
      path.appendChild(svg('title', null, ln.name));
      box.appendChild(path);
      drawn++;
    });
    box.setAttribute('data-lines', String(drawn));
  }

  function renderCharts() {
    var names = Object.keys(state.series).filter(function (n) {
      return state.rows[n];
    });
    var pick = function (key) {
      return function (n) {
        return {
          name: n,
          color: colorOf(n),
          points: state.series[n].map(function (p) {
            return { t: p.t, y: p[key] };
          }),
        };
      };
    };
    drawChart('chart-throughput', names.map(pick('rps')));
    drawChart(
      'chart-latency',
      names.map(pick('p99')).concat(
        names.map(function (n) {
          var l = pick('p50')(n);
          l.dashed = true;
          l.name = n + ' p50';
          return l;
        }),
      ),
    );
    drawChart('chart-queue', names.map(pick('queue')));
    var legend = $('legend');
    legend.textContent = '';
    names.forEach(function (n) {
      var s = el('span');
      var sw = el('i');
      sw.style.background = colorOf(n);
      s.appendChild(sw);
      s.appendChild(document.createTextNode(n));
      legend.appendChild(s);
    });
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

  // ------------------------------------------------------------ prediction form
  // The form follows the chosen task's input type (from GET /models/{name}/info, task_details):
  // a text box for sequences and text, a JSON editor for JSON and tensors, a file picker for
  // images and audio (sent as a multipart upload or base64 in JSON), a message list for chat.
  var MEDIA_TYPES = {
    png: 'image/png',
    jpeg: 'image/jpeg',
    gif: 'image/gif',
    bmp: 'image/bmp',
    webp: 'image/webp',
    wav: 'audio/wav',
    flac: 'audio/flac',
    ogg: 'audio/ogg',
    mp3: 'audio/mpeg',
  };
  var ROLES = ['system', 'user', 'assistant'];
  // drafts: the JSON editor's text per model and task, so switching tasks keeps each one's input.
  var form = { info: {}, pending: {}, drafts: {}, type: 'sequence', spec: null };

  function draftKey() {
    return $('predict-model').value + '/' + $('predict-task').value;
  }

  function modelOf(name) {
    return state.models.filter(function (x) {
      return x.model === name;
    })[0];
  }

  function taskSpec() {
    var m = modelOf($('predict-model').value);
    var info = m && form.info[m.model];
    if (!info || info.version !== m.version) return null;
    return info.tasks[$('predict-task').value] || null;
  }

  // Each model's task details, fetched once per version.
  function loadInfo(m) {
    var known = form.info[m.model];
    if (known && known.version === m.version) return;
    if (form.pending[m.model] === m.version) return;
    form.pending[m.model] = m.version;
    api('GET', '/models/' + encodeURIComponent(m.model) + '/info').then(
      function (r) {
        delete form.pending[m.model];
        if (!r.env.success) return;
        var tasks = {};
        (r.env.data.task_details || []).forEach(function (t) {
          tasks[t.name] = t;
        });
        form.info[m.model] = { version: m.version, tasks: tasks };
        if ($('predict-model').value === m.model) fillTasks();
      },
      function () {
        delete form.pending[m.model];
      },
    );
  }

  function typeLabel(t, spec) {
    if (spec && spec.input_type && spec.input_type !== 'sequence') return spec.input_type;
    return ((spec ? spec.sequence_types : t.sequence_types) || []).join(', ') || '…';
  }

  function fillModels(models, def) {
    var key = models
      .map(function (m) {
        return (
          m.model +
          '@' +
          m.version +
          ':' +
          m.tasks
            .map(function (t) {
              return t.name;
            })
            .join(',')
        );
      })
      .join('|');
    if (key === state.modelNames) return;
    state.modelNames = key;
    var sel = $('predict-model');
    var current = sel.value || def || (models[0] && models[0].model);
    sel.textContent = '';
    models.forEach(function (m) {
      sel.appendChild(el('option', { value: m.model }, m.model));
    });
    sel.value = current;
    fillTasks();
  }

  function fillTasks() {
    var name = $('predict-model').value;
    var m = modelOf(name);
    var sel = $('predict-task');
    var current = sel.value;
    var info = m && form.info[m.model] && form.info[m.model].version === m.version ? form.info[m.model] : null;
    sel.textContent = '';
    (m ? m.tasks : []).forEach(function (t) {
      var spec = info ? info.tasks[t.name] : null;
      sel.appendChild(
        el('option', { value: t.name, title: t.description || '' }, t.name + ' (' + typeLabel(t, spec) + ')'),
      );
    });
    if (
      current &&
      m &&
      m.tasks.some(function (t) {
        return t.name === current;
      })
    )
      sel.value = current;
    if (m) loadInfo(m);
    showInput();
  }

  // A JSON value a schema would take, to start the editor with (the task's example wins).
  function fromSchema(schema, depth) {
    if (!schema || typeof schema !== 'object' || depth > 4) return null;
    if (schema.examples && schema.examples.length) return schema.examples[0];
    if (schema['default'] !== undefined) return schema['default'];
    if (schema['enum'] && schema['enum'].length) return schema['enum'][0];
    var type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
    if (type === 'object' || (!type && schema.properties)) {
      var out = {};
      var props = schema.properties || {};
      var keys = schema.required && schema.required.length ? schema.required : Object.keys(props);
      keys.forEach(function (k) {
        out[k] = fromSchema(props[k], depth + 1);
      });
      return out;
    }
    if (type === 'array') {
      var item = fromSchema(schema.items, depth + 1);
      var n = Math.max(1, schema.minItems || 0);
      var arr = [];
      for (var i = 0; i < Math.min(n, 4); i++) arr.push(item);
      return arr;
    }
    if (type === 'string') return '';
    if (type === 'integer' || type === 'number') return schema.minimum !== undefined ? schema.minimum : 0;
    if (type === 'boolean') return false;
    return null;
  }

  // Zeros in each tensor's shape (-1: one).
  function tensorTemplate(tensors) {
    var out = {};
    (tensors || []).forEach(function (t) {
      var build = function (d) {
        if (d >= t.shape.length) return 0;
        var n = t.shape[d] < 0 ? 1 : Math.min(t.shape[d], 8);
        var a = [];
        for (var i = 0; i < n; i++) a.push(build(d + 1));
        return a;
      };
      out[t.name] = t.shape.length ? build(0) : { datatype: t.datatype, shape: [], data: [0] };
    });
    return out;
  }

  function checkJson() {
    var box = $('predict-json-status');
    var text = $('predict-json').value.trim();
    if (!text) {
      box.textContent = '';
      box.className = 'muted';
      return false;
    }
    try {
      JSON.parse(text);
      box.textContent = 'valid JSON';
      box.className = 'muted';
      return true;
    } catch (e) {
      box.textContent = 'not valid JSON: ' + e.message;
      box.className = 'muted bad';
      return false;
    }
  }

  function addMessage(role, content) {
    var row = el('div', { class: 'message' });
    var sel = el('select', { 'aria-label': 'role', class: 'message-role' });
    ROLES.forEach(function (r) {
      sel.appendChild(el('option', { value: r }, r));
    });
    sel.value = role;
    var text = el('textarea', { rows: '2', 'aria-label': 'content', class: 'message-content', spellcheck: 'false' });
    text.value = content || '';
    var drop = el('button', { type: 'button', title: 'remove', class: 'message-remove' }, '×');
    drop.addEventListener('click', function () {
      row.remove();
      if (!$('predict-messages').children.length) addMessage('user', '');
    });
    row.appendChild(sel);
    row.appendChild(text);
    row.appendChild(drop);
    $('predict-messages').appendChild(row);
  }

  // Shows the input the chosen task takes.
  function showInput() {
    var spec = taskSpec();
    var type = spec && spec.input_type ? spec.input_type : 'sequence';
    var changed = type !== form.type || spec !== form.spec;
    form.type = type;
    form.spec = spec;
    $('predict-form').setAttribute('data-input-type', type);
    $('predict-type').textContent = spec ? 'input: ' + type : '';
    $('predict-sequence-box').hidden = type !== 'sequence' && type !== 'text';
    $('predict-json-box').hidden = type !== 'json' && type !== 'tensor';
    $('predict-file-box').hidden = type !== 'image' && type !== 'audio';
    $('predict-chat-box').hidden = type !== 'chat';
    $('predict-sequence-name').textContent = type === 'text' ? 'text' : 'sequence';
    $('predict-sequence').placeholder = type === 'text' ? 'Some text…' : 'ACGT…';
    if (!changed || !spec) return;
    if (type === 'json' || type === 'tensor') {
      $('predict-json-name').textContent =
        type === 'tensor'
          ? 'tensors (JSON: name → nested array or {datatype, shape, data})'
          : 'input (JSON' + (spec.schema ? ', checked against the task schema' : '') + ')';
      var example =
        spec.input && spec.input.example !== undefined
          ? spec.input.example
          : type === 'tensor'
            ? tensorTemplate(spec.tensors)
            : fromSchema(spec.schema, 0);
      var draft = form.drafts[draftKey()];
      $('predict-json').value = draft !== undefined ? draft : JSON.stringify(example, null, 2);
      checkJson();
    }
    if (type === 'image' || type === 'audio') {
      var formats = spec.formats || [];
      $('predict-file').setAttribute(
        'accept',
        formats
          .map(function (f) {
            return MEDIA_TYPES[f] || '';
          })
          .filter(Boolean)
          .join(','),
      );
      $('predict-file-name').textContent = type === 'image' ? 'image' : 'audio';
      $('predict-file-info').textContent =
        formats.join(', ') +
        (spec.max_bytes ? ' · at most ' + spec.max_bytes + ' bytes' : '') +
        (type === 'image' && spec.max_pixels ? ', ' + spec.max_pixels + ' pixels' : '') +
        (type === 'audio' && spec.max_seconds ? ', ' + spec.max_seconds + ' s' : '');
    }
    if (type === 'chat' && !$('predict-messages').children.length) addMessage('user', '');
  }

  $('predict-model').addEventListener('change', fillTasks);
  $('predict-task').addEventListener('change', showInput);
  $('predict-json').addEventListener('input', function () {
    form.drafts[draftKey()] = $('predict-json').value;
    checkJson();
  });
  $('predict-add-message').addEventListener('click', function () {
    var rows = $('predict-messages').children;
    var last = rows.length ? rows[rows.length - 1].querySelector('select').value : 'assistant';
    addMessage(last === 'user' ? 'assistant' : 'user', '');
  });

  function readDataUrl(file) {
    return new Promise(function (resolve, reject) {
      var r = new FileReader();
      r.onload = function () {
        resolve(String(r.result));
      };
      r.onerror = function () {
        reject(r.error || new Error('cannot read the file'));
      };
      r.readAsDataURL(file);
    });
  }

  $('predict-file').addEventListener('change', function () {
    var file = $('predict-file').files[0];
    var img = $('predict-preview');
    img.hidden = true;
    img.removeAttribute('src');
    if (!file || form.type !== 'image') return;
    // A preview from the bytes themselves (data: URLs are the only images the page's policy allows).
    readDataUrl(file).then(
      function (url) {
        if ($('predict-file').files[0] !== file) return;
        img.src = url;
        img.hidden = false;
      },
      function () {
        /* no preview */
      },
    );
  });

  $('key-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    try {
      sessionStorage.setItem(KEY_STORE, $('api-key').value.trim());
    } catch (e) {
      /* storage off: nothing kept */
    }
    $('api-key').value = '';
    poll();
  });

  // multipart/form-data: the file part and the other fields; the browser sets the boundary.
  function apiForm(path, data) {
    return fetch(path, { method: 'POST', headers: authHeaders(), body: data }).then(answerOf);
  }

  // What the form sends: {body} (JSON), {form} (multipart), or {error} (nothing is sent).
  function buildRequest(task, options) {
    var type = form.type;
    var body = { task_type: task || undefined };
    if (options !== undefined) body.options = options;
    if (type === 'sequence') {
      body.sequence = $('predict-sequence').value;
      return Promise.resolve({ body: body });
    }
    if (type === 'text') {
      body.input = $('predict-sequence').value;
      return Promise.resolve({ body: body });
    }
    if (type === 'json' || type === 'tensor') {
      if (!checkJson())
        return Promise.resolve({ error: 'input: not valid JSON' + ($('predict-json').value.trim() ? '' : ' (empty)') });
      body.input = JSON.parse($('predict-json').value);
      return Promise.resolve({ body: body });
    }
    if (type === 'chat') {
      var messages = [];
      var rows = $('predict-messages').children;
      for (var i = 0; i < rows.length; i++)
        messages.push({
          role: rows[i].querySelector('select').value,
          content: rows[i].querySelector('textarea').value,
        });
      body.input = { messages: messages };
      return Promise.resolve({ body: body });
    }
    var file = $('predict-file').files[0];
    if (!file) return Promise.resolve({ error: 'choose ' + (type === 'image' ? 'an image' : 'an audio') + ' file' });
    if ($('predict-file-mode').value === 'base64') {
      return readDataUrl(file).then(function (url) {
        body.input = url;
        return { body: body };
      });
    }
    var data = new FormData();
    if (task) data.append('task_type', task);
    if (options !== undefined) data.append('options', JSON.stringify(options));
    data.append('file', file, file.name);
    return Promise.resolve({ form: data });
  }

  $('predict-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var name = $('predict-model').value;
    var out = $('predict-result');
    var status = $('predict-status');
    var options;
    var opts = $('predict-options').value.trim();
    if (opts) {
      try {
        options = JSON.parse(opts);
      } catch (e) {
        status.textContent = 'options: not valid JSON';
        return;
      }
    }
    var path = '/models/' + encodeURIComponent(name) + '/predict';
    var t0;
    var fail = function (e) {
      $('predict-submit').disabled = false;
      status.textContent = 'failed: ' + e.message;
    };
    buildRequest($('predict-task').value, options)
      .then(function (req) {
        if (req.error) {
          status.textContent = req.error;
          return;
        }
        status.textContent = 'predicting…';
        out.className = '';
        out.textContent = '';
        $('predict-submit').disabled = true;
        t0 = performance.now();
        return (req.form ? apiForm(path, req.form) : api('POST', path, req.body, false)).then(function (r) {
          $('predict-submit').disabled = false;
          var ms = Math.round(performance.now() - t0);
          if (r.env.success) {
            status.textContent = 'done in ' + ms + ' ms (request ' + r.env.request_id + ')';
            out.textContent = JSON.stringify(r.env.data, null, 2);
          } else {
            status.textContent = 'failed: HTTP ' + r.status;
            out.className = 'error';
            out.textContent =
              (r.env.error ? r.env.error.code + ': ' : '') +
              r.env.message +
              (r.env.error && r.env.error.details && typeof r.env.error.details !== 'string'
                ? '\n' + JSON.stringify(r.env.error.details, null, 2)
                : '');
          }
          poll();
        });
      })
      .catch(fail);
  });

  // ------------------------------------------------------------ polling
  var inflight = false;
  var again = false;
  function poll() {
    if (inflight) {
      again = true;
      return;
    }
    if (state.timer) clearTimeout(state.timer);
    state.timer = null;
    inflight = true;
    api('GET', '/v1/monitor/overview')
      .then(function (r) {
        if (!r.env.success) throw new Error((r.env.error ? r.env.error.code + ': ' : '') + r.env.message);
        var d = r.env.data;
        state.models = d.models;
        state.polls++;
        renderSummary(d.summary);
        renderModels(d.models);
        updateSeries(d.models);
        renderCharts();
        renderAlerts(d.alerts);
        renderThresholds(d.thresholds);
        fillModels(d.models, d.default_model);
        $('status').textContent = 'updated ' + new Date().toLocaleTimeString() + ' · every ' + POLL_MS / 1000 + ' s';
        document.body.setAttribute('data-polls', String(state.polls));
        document.body.removeAttribute('data-auth');
      })
      .catch(function (e) {
        var needsKey = /^(UNAUTHORIZED|FORBIDDEN):/.test(e.message);
        $('status').textContent = needsKey
          ? e.message + ' — enter an API key with the predict scope above'
          : 'gateway unreachable: ' + e.message + ' (retrying)';
        document.body.setAttribute('data-auth', needsKey ? 'needed' : '');
      })
      .then(function () {
        inflight = false;
        if (again) {
          again = false;
          poll();
        } else state.timer = setTimeout(poll, POLL_MS);
      });
  }

  poll();
})();
