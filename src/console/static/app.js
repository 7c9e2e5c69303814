// Start-up and wiring: the settings from the page's address, the state the panels share, the
// key form, and the poll that fetches the overview and hands it to each panel. Loaded last.
'use strict';
/* global KEY_STORE, $, api, renderSummary, renderModels, updateSeries, renderCharts, renderAlerts */
/* global renderThresholds, fillModels, wireThresholds, wirePredictForm */
/* exported POLL_MS, state, poll */

var params = new URLSearchParams(location.search);
var POLL_MS = Math.max(200, Number(params.get('poll')) || 3000);
var state = { rows: {}, prev: {}, series: {}, busy: {}, models: [], modelNames: '', timer: null, polls: 0 };

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

// The key typed in the header is kept for this tab and used from the next poll on.
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

wireThresholds();
wirePredictForm();
poll();
