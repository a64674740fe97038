// psg4j bench page: one ECharts line chart per model, median ms per call against B on log axes.
(function () {
  'use strict';
  var bench = JSON.parse(document.getElementById('psg4j-bench').textContent);
  var severalThreads = bench.threads.length > 1;

  function fmt(v) {
    if (v === null || v === undefined) return '-';
    return Number(v.toPrecision(3)).toString();
  }

  // One series per method (and thread count, when several were timed): [B, median ms] points in B order.
  function series(suite) {
    var out = [];
    bench.methods.forEach(function (method) {
      bench.threads.forEach(function (threads) {
        var points = bench.results.filter(function (r) {
          return r.suite === suite && r.method === method && r.threads === threads && r.median_ms !== null;
        }).map(function (r) { return [r.batch, r.median_ms]; });
        points.sort(function (a, b) { return a[0] - b[0]; });
        if (points.length === 0) return;
        out.push({
          name: severalThreads ? method + ' · ' + threads + ' threads' : method,
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

  function draw(el) {
    var suite = el.getAttribute('data-suite');
    var chart = echarts.init(el, null, {renderer: 'svg'});
    chart.on('finished', function () { el.setAttribute('data-rendered', 'true'); });
    var x = extent(bench.batches);
    chart.setOption({
      animation: false,
      title: {text: suite, left: 'center', top: 4},
      legend: {type: 'scroll', bottom: 0},
      grid: {left: 70, right: 30, top: 40, bottom: 70},
      tooltip: {
        trigger: 'item',
        formatter: function (p) { return p.seriesName + '<br>B = ' + p.value[0] + ': ' + fmt(p.value[1]) + ' ms'; }
      },
      xAxis: {type: 'log', logBase: 2, name: 'B (samples per batch)', nameLocation: 'middle', nameGap: 28,
              min: x.min, max: x.max},
      yAxis: {type: 'log', logBase: 10, name: 'ms per call (median)', nameLocation: 'middle', nameGap: 50},
      series: series(suite)
    });
    window.addEventListener('resize', function () { chart.resize(); });
  }

  Array.prototype.forEach.call(document.querySelectorAll('.chart.bench'), draw);
})();
