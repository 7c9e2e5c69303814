// The live charts: per-model series of throughput, latency and queue depth kept from each poll,
// drawn as SVG lines over the last KEEP polls.
'use strict';
/* global state, POLL_MS, $, el, svg, fmtNum */
/* exported updateSeries, renderCharts */

var KEEP = 90;
var COLORS = ['#2563eb', '#dc2626', '#059669', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#4b5563'];

function colorOf(name) {
  var i = state.models
    .map(function (m) {
      return m.model;
    })
    .indexOf(name);
  return COLORS[(i < 0 ? 0 : i) % COLORS.length];
}

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
