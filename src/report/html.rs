//! report.html: one self-contained file (no CDN, works offline) with the
//! run's charts over time, drawn by the vendored uPlot
//! (assets/vendor/uplot), and its tables: thresholds, checks, tenants and
//! endpoints (sortable), errors with examples, the drill, the metadata.
//!
//! The data is embedded as JSON; a small script draws the charts with
//! one shared time axis and cursor, marks stage boundaries, the spike and
//! the recovery point, and makes tables sortable. When the script finishes
//! it marks `<body data-rendered="N">` (N charts), and any script error goes
//! to `data-error`, which is what the headless-browser test looks at.

use std::fmt::Write;

use serde_json::{Value, json};

use super::summary::{Group, Stats, Summary};
use super::{Exporter, ReportError, Run, escape as esc};
use crate::metrics::{Results, TimelineRow};
use crate::output::{human_ms, thousands};

const UPLOT_JS: &str = include_str!("../../assets/vendor/uplot/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../../assets/vendor/uplot/uPlot.min.css");

/// The HTML report.
pub struct Html;

impl Exporter for Html {
    fn file_name(&self) -> &'static str {
        "report.html"
    }

    fn render(&self, run: &Run<'_>) -> Result<Vec<u8>, ReportError> {
        Ok(render(run.results, &run.summary).into_bytes())
    }
}

fn pct(x: f64) -> String {
    let s = format!("{:.2}", x * 100.0);
    format!("{}%", s.trim_end_matches('0').trim_end_matches('.'))
}

/// The per-second series, every second from 0 to the last filled in.
fn series(r: &Results) -> Value {
    let rows: Vec<TimelineRow> = r.timeline.rows();
    let last = rows.iter().map(|x| x.second).max().unwrap_or(0);
    let mut by_second = vec![None; last as usize + 1];
    for row in &rows {
        by_second[row.second as usize] = Some(row);
    }
    let col = |f: &dyn Fn(&TimelineRow) -> f64| -> Vec<Value> {
        by_second
            .iter()
            .map(|row| row.map_or(json!(0), |x| json!(f(x))))
            .collect()
    };
    // Latency of a second with no response is a gap, not a zero.
    let lat = |f: &dyn Fn(&TimelineRow) -> Option<f64>| -> Vec<Value> {
        by_second
            .iter()
            .map(|row| row.and_then(f).map_or(Value::Null, |v| json!(v)))
            .collect()
    };
    let planned: Vec<Value> = (0..=last as usize)
        .map(|s| json!(r.planned_sessions.get(s).copied().unwrap_or(0)))
        .collect();
    json!({
        "second": (0..=last).collect::<Vec<u64>>(),
        "requests": col(&|x| x.requests as f64),
        "failed": col(&|x| x.failed as f64),
        "p50": lat(&|x| x.p50_ms),
        "p95": lat(&|x| x.p95_ms),
        "p99": lat(&|x| x.p99_ms),
        "service_p99": lat(&|x| x.service_p99_ms),
        "lag_p99": lat(&|x| x.lag_p99_ms),
        "lag_max": lat(&|x| x.lag_max_ms),
        "in_flight": col(&|x| x.in_flight as f64),
        "active_sessions": col(&|x| x.active_sessions as f64),
        "sessions_started": col(&|x| x.sessions_started as f64),
        "sessions_dropped": col(&|x| x.sessions_dropped as f64),
        "planned_sessions": planned,
        "errors": {
            "refused": col(&|x| x.refused as f64),
            "reset": col(&|x| x.reset as f64),
            "timeout": col(&|x| x.timeout as f64),
            "tls": col(&|x| x.tls as f64),
            "connect": col(&|x| x.connect as f64),
            "protocol": col(&|x| x.protocol as f64),
            "4xx": col(&|x| x.status_4xx as f64),
            "5xx": col(&|x| x.status_5xx as f64),
        },
    })
}

/// Vertical markers: stage boundaries, the spike, the recovery point. A
/// drill's stages are its own 1 ms steps around the spike: its spike
/// markers say it, where stage labels would print over them.
fn markers(r: &Results) -> Value {
    let mut m = Vec::new();
    if r.drill.is_none() {
        for (i, at) in r.stages.iter().enumerate() {
            m.push(json!({"at": at, "label": format!("stage {}", i + 2), "kind": "stage"}));
        }
    }
    if let Some(d) = &r.drill {
        m.push(json!({"at": d.spike_start_s, "label": "spike", "kind": "spike"}));
        m.push(json!({"at": d.spike_end_s, "label": "spike end", "kind": "spike"}));
        if let Some(at) = d.recovered_at_s {
            m.push(json!({"at": at, "label": "recovered", "kind": "recovered"}));
        }
    }
    Value::Array(m)
}

fn stats_cells(s: &Stats) -> String {
    [s.med, s.p95, s.p99]
        .iter()
        .map(|v| format!("<td class=num data-v=\"{v}\">{}</td>", esc(&human_ms(*v))))
        .collect()
}

fn group_table(id: &str, what: &str, groups: &[Group], secs: f64) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<table id=\"{id}\" class=sortable><thead><tr><th data-type=text>{what}</th><th>requests</th><th>rate (/s)</th><th>share</th><th>error rate</th><th>p50</th><th>p95</th><th>p99</th></tr></thead><tbody>"
    );
    for g in groups {
        let rate = g.requests as f64 / secs.max(1e-9);
        let _ = write!(
            o,
            "<tr><td>{}</td><td class=num data-v=\"{}\">{}</td><td class=num data-v=\"{rate:.3}\">{rate:.1}</td><td class=num data-v=\"{}\">{}</td><td class=num data-v=\"{}\">{}</td>{}</tr>",
            esc(&g.name),
            g.requests,
            thousands(g.requests),
            g.share,
            pct(g.share),
            g.failed_rate,
            pct(g.failed_rate),
            stats_cells(&g.duration)
        );
    }
    o.push_str("</tbody></table>");
    o
}

fn render(r: &Results, s: &Summary) -> String {
    let run = &s.run;
    let secs = run.elapsed.as_secs_f64();
    let mut body = String::new();
    let failed_thresholds = s.thresholds.iter().filter(|v| !v.ok).count();
    let verdict = match (s.thresholds.is_empty(), failed_thresholds) {
        (true, _) => "no thresholds".to_string(),
        (false, 0) if s.thresholds.len() == 1 => "the threshold held".to_string(),
        (false, 0) => format!("all {} thresholds held", s.thresholds.len()),
        (false, n) => format!("{n} of {} thresholds failed", s.thresholds.len()),
    };
    let _ = write!(
        body,
        "<header><h1>reprise · {}</h1><p class=sub>{} → {}</p></header>",
        esc(&run.target),
        esc(&run.model),
        esc(&run.target)
    );
    let p95 = s.metric("http_req_duration").map_or(0.0, |m| m.p95);
    let p99 = s.metric("http_req_duration").map_or(0.0, |m| m.p99);
    let cards = [
        ("requests", thousands(s.requests.total)),
        ("requests/s", format!("{:.1}", s.requests.per_sec)),
        ("failed", pct(s.requests.failed_rate)),
        ("p95 (from due)", human_ms(p95)),
        ("p99 (from due)", human_ms(p99)),
        ("thresholds", verdict.clone()),
    ];
    body.push_str("<section id=cards>");
    for (k, v) in cards {
        let bad = k == "thresholds" && failed_thresholds > 0;
        let _ = write!(
            body,
            "<div class=\"card{}\"><div class=k>{}</div><div class=v>{}</div></div>",
            if bad { " bad" } else { "" },
            esc(k),
            esc(&v)
        );
    }
    body.push_str("</section>");
    if let Some(reason) = &run.aborted {
        let _ = write!(body, "<p class=alert>Stopped early: {}</p>", esc(reason));
    }
    if run.interrupted {
        body.push_str("<p class=alert>Interrupted (Ctrl-C): partial results.</p>");
    }
    if !s.thresholds.is_empty() {
        body.push_str("<section id=thresholds><h2>Thresholds</h2><table><thead><tr><th></th><th>threshold</th><th>observed</th></tr></thead><tbody>");
        for v in &s.thresholds {
            let seen = v.shown();
            let _ = write!(
                body,
                "<tr class=\"{}\"><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
                if v.ok { "ok" } else { "bad" },
                if v.ok { "✓" } else { "✗" },
                esc(&v.threshold),
                esc(&seen)
            );
        }
        body.push_str("</tbody></table></section>");
    }
    body.push_str("<section id=charts><h2>Over time</h2><p class=note>Latency counts from when each request was due (coordinated-omission safe); service time from the actual send. Drag to zoom, double-click to reset; the cursor is shared by all charts.</p>");
    for (id, title) in [
        ("latency", "Latency (ms)"),
        ("rate", "Sessions and requests per second"),
        ("errors", "Errors per second, by kind"),
        ("load", "In flight and open sessions"),
        ("lag", "Generator lag (ms)"),
    ] {
        let _ = write!(
            body,
            "<div class=chart-box><h3>{title}</h3><div class=chart id=\"chart-{id}\"></div></div>"
        );
    }
    for (i, w) in r.watch.iter().enumerate() {
        let _ = write!(
            body,
            "<div class=chart-box><h3>Target: {} <small><code>{}</code>{}</small></h3><div class=chart id=\"chart-watch-{i}\"></div></div>",
            esc(&w.name),
            esc(&w.url),
            if w.scrapes_failed > 0 {
                format!(" — {} scrapes failed", w.scrapes_failed)
            } else {
                String::new()
            }
        );
    }
    body.push_str("</section>");
    if let Some(d) = &r.drill {
        let ms = |v: Option<f64>| v.map_or_else(|| "none".to_string(), human_ms);
        let _ = write!(
            body,
            "<section id=drill><h2>Spike drill</h2><table><tbody><tr><th>load</th><td>×{} → ×{} from {}s to {}s, observed to {}s</td></tr><tr><th>baseline</th><td>p95 {}, errors {} ({} requests)</td></tr><tr><th>spike</th><td>p95 {}, errors {}, peak p95 {}, {} sessions dropped</td></tr><tr class=\"{}\"><th>recovery</th><td>{} (back means p95 ≤ {} and errors ≤ {})</td></tr></tbody></table></section>",
            d.baseline_multiplier,
            d.spike_multiplier,
            d.spike_start_s,
            d.spike_end_s,
            d.observe_end_s,
            esc(&ms(d.baseline.p95_ms)),
            pct(d.baseline.error_rate),
            thousands(d.baseline.requests),
            esc(&ms(d.spike.p95_ms)),
            pct(d.spike.error_rate),
            esc(&ms(d.peak_p95_ms)),
            thousands(d.spike_sessions_dropped),
            if d.recovery_time.is_some() {
                "ok"
            } else {
                "bad"
            },
            esc(&d.verdict),
            esc(&ms(d.p95_limit_ms)),
            pct(d.error_rate_limit)
        );
    }
    if let Some(c) = &s.comparison {
        let _ = write!(
            body,
            "<section id=comparison><h2>Against the baseline</h2><p>{} (run {}): requests/s {:.1} → {:.1}, error rate {} → {}.</p><table class=sortable><thead><tr><th data-type=text>metric or endpoint</th><th>p50</th><th>p95</th><th>p99</th><th>max</th><th>error rate</th><th>KS distance</th></tr></thead><tbody>",
            esc(&c.baseline),
            esc(&c.baseline_start),
            c.rate.0,
            c.rate.1,
            pct(c.error_rate.0),
            pct(c.error_rate.1)
        );
        let tenants = c.tenants.iter().map(|d| (format!("tenant {}", d.name), d));
        let rows = c
            .metrics
            .iter()
            .map(|d| (d.name.clone(), d))
            .chain(tenants)
            .chain(c.endpoints.iter().map(|d| (d.name.clone(), d)));
        for (name, d) in rows {
            if super::terminal::one_sided(d).is_some() {
                // Only one run had it: its own values, not a change from 0.
                let (new, n) = if d.count.0 == 0 {
                    (true, d.count.1)
                } else {
                    (false, d.count.0)
                };
                let side = |p: (f64, f64)| {
                    let v = if new { p.1 } else { p.0 };
                    format!(
                        "<td class=num data-v=\"0\">{} {}</td>",
                        if new { "new:" } else { "gone, was" },
                        esc(&crate::output::human_ms(v))
                    )
                };
                let _ = write!(
                    body,
                    "<tr><td>{} ({} {} requests)</td>{}{}{}{}<td class=num data-v=\"0\"></td><td class=num data-v=\"0\">—</td></tr>",
                    esc(&name),
                    if new {
                        "only this run:"
                    } else {
                        "only the baseline:"
                    },
                    n,
                    side(d.p50),
                    side(d.p95),
                    side(d.p99),
                    side(d.max)
                );
                continue;
            }
            let cell = |p: (f64, f64)| {
                let rel = if p.0 > 0.0 { (p.1 - p.0) / p.0 } else { 0.0 };
                format!(
                    "<td class=num data-v=\"{rel}\">{}</td>",
                    esc(&super::terminal::then_now(p.0, p.1))
                )
            };
            let err = d.error_rate.map_or_else(
                || "<td class=num data-v=\"0\"></td>".to_string(),
                |(a, b)| {
                    format!(
                        "<td class=num data-v=\"{}\">{} → {}</td>",
                        b - a,
                        pct(a),
                        pct(b)
                    )
                },
            );
            let _ = write!(
                body,
                "<tr><td>{}</td>{}{}{}{}{err}<td class=num data-v=\"{}\">{:.3}</td></tr>",
                esc(&name),
                cell(d.p50),
                cell(d.p95),
                cell(d.p99),
                cell(d.max),
                d.ks,
                d.ks
            );
        }
        body.push_str("</tbody></table></section>");
    }
    let _ = write!(
        body,
        "<section id=tenants><h2>Tenants</h2>{}</section>",
        group_table("tenant-table", "tenant", &s.tenants, secs)
    );
    let _ = write!(
        body,
        "<section id=endpoints><h2>Endpoints</h2>{}</section>",
        group_table("endpoint-table", "endpoint", &s.endpoints, secs)
    );
    if !s.checks.is_empty() {
        body.push_str("<section id=checks><h2>Checks</h2><table class=sortable><thead><tr><th data-type=text>check</th><th>passed</th><th>failed</th><th>pass rate</th></tr></thead><tbody>");
        for c in &s.checks {
            let _ = write!(
                body,
                "<tr class=\"{}\"><td>{}</td><td class=num data-v=\"{}\">{}</td><td class=num data-v=\"{}\">{}</td><td class=num data-v=\"{}\">{}</td></tr>",
                if c.fails == 0 { "ok" } else { "bad" },
                match c.cut_note() {
                    Some(n) => format!("{} <small>({})</small>", esc(&c.name), esc(&n)),
                    None => esc(&c.name),
                },
                c.passes,
                thousands(c.passes),
                c.fails,
                thousands(c.fails),
                c.rate,
                pct(c.rate)
            );
        }
        body.push_str("</tbody></table></section>");
    }
    body.push_str("<section id=errors><h2>Errors</h2>");
    if s.errors.is_empty() {
        body.push_str("<p>None.</p>");
    } else {
        body.push_str(
            "<table><thead><tr><th>kind</th><th>count</th><th>examples</th></tr></thead><tbody>",
        );
        for e in &s.errors {
            let examples: String = e
                .examples
                .iter()
                .map(|(endpoint, msg)| {
                    format!("<li><code>{}</code>: {}</li>", esc(endpoint), esc(msg))
                })
                .collect();
            let _ = write!(
                body,
                "<tr><td>{}</td><td class=num>{}</td><td><ul>{examples}</ul></td></tr>",
                esc(&e.kind),
                thousands(e.count)
            );
        }
        body.push_str("</tbody></table>");
    }
    body.push_str("</section>");
    if let Some(a) = &s.auth {
        let _ = write!(
            body,
            "<section id=auth><h2>Auth</h2><p>{} with {} users: {} logins, {} token refreshes, {} failures, {} cut short by the end of the run, {} retries after 401, {} sessions denied; auth_req_duration p95 {}.</p></section>",
            esc(a.kind),
            a.identities,
            thousands(a.logins),
            thousands(a.token_refreshes),
            thousands(a.auth_failures),
            thousands(a.auth_cut_short),
            thousands(a.auth_retries),
            thousands(a.sessions_denied),
            esc(&human_ms(a.auth_req_duration.p95))
        );
    }
    let meta_rows = [
        ("reprise", run.version.clone()),
        ("command", run.command.clone()),
        ("model", run.model.clone()),
        ("target", run.target.clone()),
        ("profile", run.profile.clone()),
        ("seed", run.seed.to_string()),
        (
            "segment",
            run.segment.clone().unwrap_or_else(|| "whole run".into()),
        ),
        ("workers", run.workers.to_string()),
        ("start", run.start.clone()),
        ("end", run.end.clone()),
        (
            "planned / run",
            format!(
                "{} / {}",
                human_ms(run.planned.as_secs_f64() * 1000.0),
                human_ms(secs * 1000.0)
            ),
        ),
    ];
    body.push_str("<section id=meta><h2>Run</h2><table><tbody>");
    for (k, v) in meta_rows {
        let _ = write!(
            body,
            "<tr><th>{}</th><td><code>{}</code></td></tr>",
            esc(k),
            esc(&v)
        );
    }
    body.push_str("</tbody></table></section>");

    let data = json!({
        "timeline": series(r),
        "markers": markers(r),
        "watch": r.watch,
    });
    // `</script>` cannot appear inside the data.
    let data = data.to_string().replace("</", "<\\/");
    format!(
        "<!doctype html>\n<html lang=en>\n<head>\n<meta charset=utf-8>\n<meta name=viewport content=\"width=device-width, initial-scale=1\">\n<meta name=generator content=\"reprise {version}\">\n<title>reprise · {title}</title>\n<style>{UPLOT_CSS}\n{CSS}</style>\n</head>\n<body>\n<script>window.onerror=function(m){{document.body.setAttribute('data-error',String(m));}};</script>\n{body}\n<script>{UPLOT_JS}</script>\n<script type=\"application/json\" id=data>{data}</script>\n<script>{SCRIPT}</script>\n</body>\n</html>\n",
        version = esc(&run.version),
        title = esc(&run.target),
    )
}

const CSS: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1200px;padding:16px 24px;color:#1d2330;background:#fbfbfd}
h1{font-size:22px;margin:8px 0 0}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde;padding-bottom:4px}h3{font-size:14px;margin:12px 0 4px;color:#445}
.sub{color:#667;margin:2px 0 12px}.note{color:#667;font-size:13px}
#cards{display:flex;flex-wrap:wrap;gap:10px}.card{background:#fff;border:1px solid #dde;border-radius:8px;padding:10px 14px;min-width:140px}.card .k{color:#667;font-size:12px}.card .v{font-size:20px;font-weight:600}.card.bad{border-color:#d33}.card.bad .v{color:#c22}
.alert{background:#fee;border:1px solid #d33;padding:8px 12px;border-radius:6px}
table{border-collapse:collapse;width:100%;background:#fff}th,td{border-bottom:1px solid #eef;padding:4px 8px;text-align:left;vertical-align:top}td.num{text-align:right;font-variant-numeric:tabular-nums}
table.sortable th{cursor:pointer;user-select:none}table.sortable th:hover{background:#f0f2f8}
tr.bad td:first-child{color:#c22;font-weight:600}tr.ok td:first-child{color:#1a7f37;font-weight:600}
code{font:12px ui-monospace,Menlo,Consolas,monospace;word-break:break-all}
.chart-box{background:#fff;border:1px solid #dde;border-radius:8px;padding:6px 10px;margin:10px 0}.chart{min-height:260px}
ul{margin:0;padding-left:18px}
"#;

const SCRIPT: &str = r#"
(function(){
var D=JSON.parse(document.getElementById('data').textContent);
var T=D.timeline, x=T.second;
var colors={stage:'#8892a6',spike:'#d9480f',recovered:'#1a7f37'};
function markers(){return {hooks:{draw:[function(u){var c=u.ctx;c.save();c.font='11px system-ui';D.markers.forEach(function(m){var p=Math.round(u.valToPos(m.at,'x',true));if(p<u.bbox.left||p>u.bbox.left+u.bbox.width)return;c.strokeStyle=colors[m.kind]||'#888';c.fillStyle=c.strokeStyle;c.setLineDash([5,4]);c.beginPath();c.moveTo(p,u.bbox.top);c.lineTo(p,u.bbox.top+u.bbox.height);c.stroke();c.fillText(m.label,p+4,u.bbox.top+12);});c.restore();}]}};}
var sync=uPlot.sync('reprise');
var made=0;
function chart(id,series,unit,xs){
  var el=document.getElementById('chart-'+id);
  var opts={width:Math.max(400,el.clientWidth||1100),height:260,plugins:[markers()],
    cursor:{sync:{key:sync.key}},scales:{x:{time:false}},
    axes:[{label:'seconds into the run'},{label:unit,size:60}],
    series:[{label:'s'}].concat(series.map(function(s){return {label:s.label,stroke:s.color,width:1.5,dash:s.dash,spanGaps:false};}))};
  new uPlot(opts,[xs||x].concat(series.map(function(s){return s.values;})),el);
  made++;
}
chart('latency',[
  {label:'p50',values:T.p50,color:'#4c6ef5'},
  {label:'p95',values:T.p95,color:'#f08c00'},
  {label:'p99',values:T.p99,color:'#e03131'},
  {label:'service time p99',values:T.service_p99,color:'#868e96',dash:[6,4]}],'ms');
chart('rate',[
  {label:'sessions planned',values:T.planned_sessions,color:'#868e96',dash:[6,4]},
  {label:'sessions started',values:T.sessions_started,color:'#4c6ef5'},
  {label:'requests',values:T.requests,color:'#2b8a3e'},
  {label:'sessions dropped',values:T.sessions_dropped,color:'#e03131'}],'per second');
var ec={'refused':'#862e9c','reset':'#d6336c','timeout':'#e8590c','tls':'#5c940d','connect':'#1864ab','protocol':'#495057','4xx':'#f59f00','5xx':'#e03131'};
chart('errors',Object.keys(T.errors).map(function(k){return {label:k,values:T.errors[k],color:ec[k]};}),'per second');
chart('load',[
  {label:'in flight',values:T.in_flight,color:'#f08c00'},
  {label:'open sessions',values:T.active_sessions,color:'#4c6ef5'}],'count');
var palette=['#4c6ef5','#f08c00','#e03131','#2b8a3e','#862e9c','#1864ab','#d6336c','#5c940d','#495057','#e8590c'];
D.watch.forEach(function(w,i){
  chart('watch-'+i,w.series.map(function(s,j){return {label:s.metric+(s.rate?' /s':''),values:s.values,color:palette[j%palette.length]};}),'value',w.times);
});
chart('lag',[
  {label:'lag p99',values:T.lag_p99,color:'#4c6ef5'},
  {label:'lag max',values:T.lag_max,color:'#e03131',dash:[6,4]}],'ms');
Array.prototype.forEach.call(document.querySelectorAll('table.sortable'),function(t){
  Array.prototype.forEach.call(t.tHead.rows[0].cells,function(th,i){
    th.addEventListener('click',function(){
      var asc=th.getAttribute('data-dir')!=='asc';th.setAttribute('data-dir',asc?'asc':'desc');
      var text=th.getAttribute('data-type')==='text';
      var rows=Array.prototype.slice.call(t.tBodies[0].rows);
      rows.sort(function(a,b){var x=a.cells[i],y=b.cells[i];
        var p=text?x.textContent:parseFloat(x.getAttribute('data-v')),q=text?y.textContent:parseFloat(y.getAttribute('data-v'));
        var r=text?p.localeCompare(q):p-q;return asc?r:-r;});
      rows.forEach(function(r){t.tBodies[0].appendChild(r);});
    });
  });
});
document.body.setAttribute('data-rendered',String(made));
})();
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_drill_is_marked_by_its_spike_not_its_steps() {
        let mut r = Results {
            stages: vec![10.0, 10.001, 20.0, 20.001],
            ..Results::default()
        };
        let labels = |r: &Results| -> Vec<String> {
            markers(r)
                .as_array()
                .expect("markers")
                .iter()
                .map(|m| m["label"].as_str().expect("label").to_string())
                .collect()
        };
        assert_eq!(labels(&r), ["stage 2", "stage 3", "stage 4", "stage 5"]);
        let d = crate::drill::SpikeDrill {
            baseline: 1.0,
            spike: 5.0,
            baseline_for: Duration::from_secs(10),
            spike_for: Duration::from_secs(10),
            observe: Duration::from_secs(20),
            tolerance: 0.2,
            sustain: Duration::from_secs(2),
            window: Duration::from_secs(2),
        };
        r.drill = Some(crate::drill::analyse(&d, &r.timeline));
        assert_eq!(labels(&r), ["spike", "spike end"]);
    }
}
