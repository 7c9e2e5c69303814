// The prediction form.
'use strict';
/* global state, poll, api, apiForm, $, el */
/* exported fillModels, wirePredictForm */

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

// The form's listeners: model and task choice, the JSON editor, chat messages, the file picker, submit.
function wirePredictForm() {
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
}
