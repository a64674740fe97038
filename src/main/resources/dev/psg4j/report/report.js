// psg4j HTML report: draws the per-reduction charts with Apache ECharts from the embedded JSON report.
(function () {
  'use strict';
  var report = JSON.parse(document.getElementById('psg4j-report').textContent);
  var LOG_RTOL = Math.log10(report.rtol);
  var REL_FLOOR = LOG_RTOL - 6;      // exact matches (relative error 0) are drawn here
  var REL_CEIL = LOG_RTOL + 10;      // finite errors are clipped here, below the NaN/Inf band
  var REL_NON_FINITE = LOG_RTOL + 50;
  var RATIO_LOG_FLOOR = -4;          // log10 of the smallest tolerance ratio the norm chart draws
  var BAD = '#b30000', OK = '#4575b4', NON_FINITE = '#54278f';

  function fmt(v) {
    if (v === null || v === undefined) return '-';
    if (v === 0) return '0';
    return Number(v.toPrecision(3)).toString();
  }

  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c];
    });
  }

  function compared(p) {
    return p.status === 'compared' && Array.isArray(p.sample_max_rel_err);
  }

  function samples() {
    var out = [];
    for (var i = 0; i < report.batch_size; i++) out.push(String(i));
    return out;
  }

  // Samples of a parameter that are bad because of NaN/Inf: the failures say so, or every finite
  // element is within tolerance (ratio <= 1), which leaves only non-finite ones to make it bad.
  function nonFiniteSamples(reduction, p) {
    var out = {};
    report.failures.forEach(function (f) {
      if (f.reduction === reduction && f.param === p.name && f.kind === 'non_finite' && f.sample !== null) {
        out[f.sample] = true;
      }
    });
    p.bad_samples.forEach(function (s) {
      if (p.sample_max_tol_ratio && p.sample_max_tol_ratio[s] <= 1) out[s] = true;
    });
    return out;
  }

  function start(el, option) {
    if (!el) return;
    var chart = echarts.init(el, null, {renderer: el.getAttribute('data-renderer') || 'svg'});
    chart.on('finished', function () { el.setAttribute('data-rendered', 'true'); });
    chart.setOption(option);
    window.addEventListener('resize', function () { chart.resize(); });
  }

  function zoom(bottom) {
    if (report.batch_size <= 64) return [];
    return [{type: 'slider', xAxisIndex: 0, bottom: bottom, height: 18}, {type: 'inside', xAxisIndex: 0}];
  }

  function heatmap(r, el) {
    var good = [], bad = [], border = Number(el.getAttribute('data-border') || 2);
    r.params.forEach(function (p, y) {
      if (!compared(p)) return;
      var isBad = {};
      p.bad_samples.forEach(function (s) { isBad[s] = true; });
      var nonFinite = nonFiniteSamples(r.reduction, p);
      p.sample_max_rel_err.forEach(function (rel, x) {
        var v = rel > 0 ? Math.min(Math.max(Math.log10(rel), REL_FLOOR), REL_CEIL) : REL_FLOOR;
        var item = {
          value: [x, y, nonFinite[x] ? REL_NON_FINITE : v],
          param: p.name, rel: rel, abs: p.sample_max_abs_err[x], nonFinite: !!nonFinite[x],
          ratio: p.sample_max_tol_ratio ? p.sample_max_tol_ratio[x] : null, bad: !!isBad[x]
        };
        if (item.bad) {
          if (border > 0) item.itemStyle = {borderColor: '#000', borderWidth: border};
          bad.push(item);
        } else {
          good.push(item);
        }
      });
    });
    var rtol = report.rtol;
    start(el, {
      animation: false,
      tooltip: {
        formatter: function (q) {
          var d = q.data;
          return esc(r.reduction + ' / ' + d.param + ' / sample ' + d.value[0]) + '<br>max rel err ' + fmt(d.rel)
              + '<br>max abs err ' + fmt(d.abs) + '<br>tolerance ratio ' + fmt(d.ratio)
              + (d.nonFinite ? '<br><b>NaN/Inf elements</b> (the errors count finite elements only)' : '') + '<br>'
              + (d.bad ? '<b>outside tolerance</b>' : 'within tolerance');
        }
      },
      grid: {top: 50, left: 10, right: 20, bottom: report.batch_size > 64 ? 70 : 30, containLabel: true},
      xAxis: {type: 'category', name: 'sample', nameLocation: 'middle', nameGap: 24, data: samples(),
        splitArea: {show: false}},
      yAxis: {type: 'category', inverse: true, splitArea: {show: false},
        data: r.params.map(function (p) { return compared(p) ? p.name : p.name + ' (' + p.status + ')'; })},
      visualMap: {
        type: 'piecewise', dimension: 2, orient: 'horizontal', left: 'center', top: 0, itemGap: 14,
        pieces: [
          {lt: LOG_RTOL - 3, label: '< ' + fmt(rtol / 1000) + ' (rtol/1000)', color: '#edf3f8'},
          {gte: LOG_RTOL - 3, lt: LOG_RTOL - 1, label: '< ' + fmt(rtol / 10), color: '#b7d3e9'},
          {gte: LOG_RTOL - 1, lt: LOG_RTOL, label: '< ' + fmt(rtol) + ' (rtol)', color: '#fdd49e'},
          {gte: LOG_RTOL, lt: LOG_RTOL + 1, label: '< ' + fmt(10 * rtol), color: '#fc8d59'},
          {gte: LOG_RTOL + 1, lt: REL_CEIL + 1, label: '≥ ' + fmt(10 * rtol) + ' (10·rtol)', color: BAD},
          {gte: REL_CEIL + 1, label: 'NaN/Inf', color: NON_FINITE}
        ]
      },
      dataZoom: zoom(20),
      // bad cells last, so that their borders are drawn over their neighbours
      series: [{name: 'max rel err', type: 'heatmap', data: good.concat(bad), progressive: 0,
        emphasis: {itemStyle: {borderColor: '#333', borderWidth: 1}}}]
    });
  }

  // Bars on an ECharts log axis grow from 1, so the chart draws log10(ratio) - RATIO_LOG_FLOOR on a
  // value axis: bars grow from the floor, and the labels give the ratio back.
  function decade(k) {
    var e = k + RATIO_LOG_FLOOR;
    return Math.abs(e) <= 3 ? fmt(Math.pow(10, e)) : '1e' + e;
  }

  function norms(r, el) {
    var cmp = r.params.filter(compared);
    if (cmp.length === 0) {
      el.textContent = 'Nothing was compared in this reduction (see the failures).';
      el.style.minHeight = '0';
      el.style.height = 'auto';
      return;
    }
    var nonFinite = cmp.map(function (p) { return nonFiniteSamples(r.reduction, p); });
    var data = [], top = -RATIO_LOG_FLOOR + 1;
    for (var i = 0; i < report.batch_size; i++) {
      var best = -1, where = null, badIn = [], nanIn = [];
      cmp.forEach(function (p, k) {
        var v = p.sample_max_tol_ratio ? p.sample_max_tol_ratio[i] : null;
        if (v !== null && v > best) { best = v; where = p.name; }
        if (p.bad_samples.indexOf(i) >= 0) badIn.push(p.name);
        if (nonFinite[k][i]) nanIn.push(p.name);
      });
      var value = best > 0 ? Math.max(Math.log10(best) - RATIO_LOG_FLOOR, 0) : 0;
      top = Math.max(top, Math.ceil(value));
      data.push({
        value: value, ratio: best < 0 ? null : best, param: where, badIn: badIn, nanIn: nanIn,
        itemStyle: {color: nanIn.length ? NON_FINITE : badIn.length ? BAD : OK}
      });
    }
    data.forEach(function (d) {
      if (d.nanIn.length) d.value = top;   // NaN/Inf: a full bar, whatever the finite elements say
    });
    start(el, {
      animation: false,
      tooltip: {
        trigger: 'item',
        formatter: function (q) {
          var d = q.data;
          return esc('sample ' + q.dataIndex) + '<br>max tolerance ratio ' + fmt(d.ratio)
              + (d.param ? esc(' (' + d.param + ')') : '')
              + (d.nanIn.length ? '<br><b>NaN/Inf in</b> ' + esc(d.nanIn.join(', ')) : '')
              + (d.badIn.length ? '<br><b>outside tolerance in</b> ' + esc(d.badIn.join(', ')) : '<br>within tolerance');
        }
      },
      grid: {top: 30, left: 10, right: 20, bottom: report.batch_size > 64 ? 70 : 30, containLabel: true},
      xAxis: {type: 'category', name: 'sample', nameLocation: 'middle', nameGap: 24, data: samples()},
      yAxis: {type: 'value', min: 0, max: top, minInterval: 1, name: 'max tolerance ratio (log scale)',
        nameTextStyle: {align: 'left'}, axisLabel: {formatter: decade}},
      dataZoom: zoom(20),
      series: [{
        name: 'max tolerance ratio', type: 'bar', data: data, barMaxWidth: 24,
        markLine: {symbol: 'none', silent: true, lineStyle: {type: 'dashed', color: '#333'},
          label: {formatter: 'tolerance', position: 'insideEndTop'}, data: [{yAxis: -RATIO_LOG_FLOOR}]}
      }]
    });
  }

  report.reductions.forEach(function (r, i) {
    heatmap(r, document.getElementById('heatmap-' + i));
    norms(r, document.getElementById('norms-' + i));
  });
})();
