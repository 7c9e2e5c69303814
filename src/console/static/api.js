// The console's calls to this gateway's JSON API: the API key typed in the header, the headers
// each call carries, and every answer read as {status, env}.
'use strict';
/* exported KEY_STORE, api, apiForm */

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

// multipart/form-data: the file part and the other fields; the browser sets the boundary.
function apiForm(path, data) {
  return fetch(path, { method: 'POST', headers: authHeaders(), body: data }).then(answerOf);
}
