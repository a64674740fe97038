// psg4j bench page: per model an ECharts line chart of median ms per call against B on log axes (a
// WRONG sampler's points as red crosses) and one of peak extra MiB per call against B.
(function () {
  'use strict';
  var bench = JSON.parse(document.getElementById('psg4j-bench').textContent);
  var severalThreads = bench.threads.length > 1;

  function fmt(v) {
    if (v === null || v === undefined) return '-';
    return Number(v.toPrecision(3)).toString();
  }

  // The engine's own name for the engine method.
  function label(method) {
    return method === 'engine' && bench.engine ? bench.engine : method;
  }

  // One series per method (and thread count, when several were timed): [B, value] points in B order,
  // a point of a sampler that failed its verification drawn as a red cross.
  function series(suite, field, scale) {
    var out = [];
    bench.methods.forEach(function (method) {
      bench.threads.forEach(function (threads) {
        var rows = bench.results.filter(function (r) {
          return r.suite === suite && r.method === method && r.threads === threads && r[field] !== null
              && r[field] > 0;
        });
        rows.sort(function (a, b) { return a.batch - b.batch; });
        if (rows.length === 0) return;
        var wrong = false;
        var points = rows.map(function (r) {
          var point = {value: [r.batch, r[field] / scale]};
          if (r.verified === false) {
            wrong = true;
            point.symbol = 'path://M0,0L10,10M10,0L0,10';
            point.symbolSize = 12;
            point.itemStyle = {borderColor: '#c0392b', borderWidth: 3, color: '#c0392b'};
            point.wrong = r.verification + ': ' + r.failure;
          }
          return point;
        });
        var name = label(method) + (wrong ? ' (WRONG)' : '');
        out.push({
          name: severalThreads ? name + ' · ' + threads + ' threads' : name,
          type: 'line', data: points, symbol: 'circle', symbolSize: 7, showSymbol: true
        });
      });
    });
    return out;
  }

  function extent(values) {
    var lo = Math.min.apply(null, values), hi = Math.max.apply(null, values);
    return lo < hi ? {min: lo, max: hi} : {};
  }

  function draw(el, field, scale, unit, axisName) {
    var suite = el.getAttribute('data-suite');
    var chart = echarts.init(el, null, {renderer: 'svg'});
    chart.on('finished', function () { el.setAttribute('data-rendered', 'true'); });
    var x = extent(bench.batches);
    chart.setOption({
      animation: false,
      title: {text: field === 'median_ms' ? suite : suite + ' · peak extra memory', left: 'center', top: 4},
      legend: {type: 'scroll', bottom: 0},
      grid: {left: 70, right: 30, top: 40, bottom: 70},
      tooltip: {
        trigger: 'item',
        formatter: function (p) {
          return p.seriesName + '<br>B = ' + p.value[0] + ': ' + fmt(p.value[1]) + ' ' + unit
              + (p.data.wrong ? '<br>' + p.data.wrong : '');
        }
      },
      xAxis: {type: 'log', logBase: 2, name: 'B (samples per batch)', nameLocation: 'middle', nameGap: 28,
              min: x.min, max: x.max},
      yAxis: {type: 'log', logBase: 10, name: axisName, nameLocation: 'middle', nameGap: 50},
      series: series(suite, field, scale)
    });
    window.addEventListener('resize', function () { chart.resize(); });
  }

  Array.prototype.forEach.call(document.querySelectorAll('.chart.bench'), function (el) {
    draw(el, 'median_ms', 1, 'ms', 'ms per call (median)');
  });
  Array.prototype.forEach.call(document.querySelectorAll('.chart.bench-memory'), function (el) {
    draw(el, 'peak_extra_bytes', 1024 * 1024, 'MiB', 'peak extra MiB per call');
  });
})();
