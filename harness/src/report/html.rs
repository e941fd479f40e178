//! `report.html`: one self-contained page (inline CSS, a few lines of inline JS, no external
//! resources) to open in a browser: the summary, each seed's timeline of ops with its crash
//! points, and each failure with its byte diff and reproduce command. All text from the run
//! directory goes through [`escape`].

use std::fmt::Write as _;

use workloads::oracle::Verdict;

use super::model::{FailureEntry, Report, SeedEntry, SeedStatus};
use super::{hexdiff, timeline};
use crate::rundir::failure::FailureDir;
use crate::runs::read::{ConsoleTail, RunData, CONSOLE_TAIL_LINES};

/// Escape text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// CSS class of a verdict's colour: `v-pass`, `v-bug`, `v-known` (suppressed) or `v-infra`.
pub fn verdict_class(v: Verdict, suppressed: bool) -> &'static str {
    match v {
        Verdict::Pass => "v-pass",
        v if v.is_kernel_bug() && suppressed => "v-known",
        v if v.is_kernel_bug() => "v-bug",
        _ => "v-infra",
    }
}

/// CSS class of a seed status's colour.
fn status_class(s: SeedStatus) -> &'static str {
    match s {
        SeedStatus::Pass => "v-pass",
        SeedStatus::Fail => "v-bug",
        SeedStatus::KnownBug => "v-known",
        SeedStatus::Infra => "v-infra",
        SeedStatus::Incomplete => "v-none",
    }
}

/// The element id of a failure's section.
pub fn failure_anchor(slug: &str) -> String {
    format!("f-{slug}")
}

const CSS: &str = r#"
:root{--pass:#2e7d32;--bug:#c62828;--known:#6a1b9a;--infra:#e65100;--none:#757575;--line:#ddd}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{padding:16px 24px;color:#fff;background:#37474f}
header h1{margin:0;font-size:20px} header p{margin:4px 0 0}
header.r-fail{background:var(--bug)} header.r-pass{background:var(--pass)} header.r-infra{background:var(--infra)}
nav{padding:8px 24px;background:#eceff1;position:sticky;top:0;z-index:1}
nav a{margin-right:16px}
main{padding:0 24px 48px}
h2{margin-top:28px;border-bottom:1px solid var(--line)}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.card{background:#fff;border:1px solid var(--line);border-radius:6px;padding:8px 14px;min-width:130px}
.card strong{display:block;font-size:24px}
.card.bad strong{color:var(--bug)}
table.kv td,table.kv th,table.verdicts td,table.verdicts th{text-align:left;padding:2px 12px 2px 0}
code,pre,.b,.timeline{font-family:ui-monospace,Menlo,Consolas,monospace}
pre{background:#fff;border:1px solid var(--line);padding:8px;overflow:auto;max-height:400px}
.pill,.cp{display:inline-block;border-radius:9px;padding:0 7px;color:#fff;font-size:12px;text-decoration:none}
.v-pass{background:var(--pass)} .v-bug{background:var(--bug)} .v-known{background:var(--known)}
.v-infra{background:var(--infra)} .v-none{background:var(--none)}
details.seed{background:#fff;border:1px solid var(--line);border-radius:6px;margin:8px 0;padding:6px 10px}
details.seed summary{cursor:pointer}
.only-problems .s-pass{display:none}
ol.timeline{list-style:none;display:flex;flex-wrap:wrap;gap:4px;padding:0;margin:8px 0}
.timeline li{border:1px solid var(--line);border-radius:4px;padding:1px 6px;background:#f5f5f5;font-size:12px}
.timeline li.cut{border:none;background:none;padding:0}
.timeline .k{color:#777} .timeline .file{color:#1565c0}
.unplaced{color:var(--none)}
article.failure{background:#fff;border:1px solid var(--line);border-left:4px solid var(--bug);border-radius:6px;padding:8px 14px;margin:14px 0}
article.failure.known{border-left-color:var(--known)}
article.failure h3{margin:4px 0 8px;font-size:15px}
table.hex{border-collapse:collapse;margin:6px 0}
table.hex td,table.hex th{padding:0 10px 0 0;text-align:left;white-space:pre;font-size:12px}
table.hex tr.found td{padding-bottom:4px}
.who{color:#555} .off{color:#777}
.d{background:#ffcdd2;color:var(--bug);font-weight:bold}
.muted,.absent{color:#666}
table.hex tr.gap td{color:#777;font-style:italic}
p.summary{font-weight:bold;margin:4px 0}
p.lost,ul.lost li{color:var(--bug);font-family:monospace;font-size:12px}
"#;

const JS: &str = r#"
(function () {
  var box = document.getElementById('only-problems');
  var list = document.getElementById('seed-list');
  if (box && list) {
    box.addEventListener('change', function () {
      list.classList.toggle('only-problems', box.checked);
    });
  }
  document.body.setAttribute('data-js', 'ok');
})();
"#;

/// Render the page.
pub fn render(report: &Report, data: &RunData) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let t = &report.totals;
    let (class, verdict) = if t.failures > 0 {
        (
            "r-fail",
            format!("FAIL: {} durability failures", t.failures),
        )
    } else if t.infra > 0 {
        (
            "r-infra",
            format!("INFRA: {} infrastructure problems", t.infra),
        )
    } else {
        ("r-pass", "PASS: no durability failure".to_owned())
    };
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>powercut report: {}</title><style>{CSS}</style></head><body>\
         <header class=\"{class}\"><h1>powercut campaign report: {}</h1><p id=\"verdict\">{}</p></header>\
         <nav><a href=\"#summary\">Summary</a><a href=\"#coverage\">Coverage</a><a href=\"#seeds\">Seeds</a><a href=\"#failures\">Failures</a></nav><main>",
        escape(&data.name),
        escape(&data.name),
        escape(&verdict)
    );
    summary(report, &mut out);
    super::coverage_html::section(&report.coverage, &report.coverage_diff, &mut out);
    seeds(report, &mut out);
    failures(report, data, &mut out);
    let _ = writeln!(out, "</main><script>{JS}</script></body></html>");
    out
}

fn card(out: &mut String, id: &str, label: &str, n: usize, bad: bool) {
    let _ = write!(
        out,
        "<div class=\"card{}\"><strong id=\"{id}\">{n}</strong>{}</div>",
        if bad && n > 0 { " bad" } else { "" },
        escape(label)
    );
}

fn summary(r: &Report, out: &mut String) {
    let t = &r.totals;
    out.push_str("<section id=\"summary\"><h2>Summary</h2><div class=\"cards\">");
    card(out, "seed-count", "seeds and workloads", t.seeds, false);
    card(out, "check-count", "crash images checked", t.checks, false);
    card(out, "pass-count", "passed", t.passed, false);
    card(
        out,
        "distinct-failure-count",
        "distinct failures (buckets)",
        t.distinct_failures.len(),
        true,
    );
    card(out, "failure-count", "failure instances", t.failures, true);
    card(
        out,
        "known-count",
        "known bugs (suppressed)",
        t.suppressed.len(),
        false,
    );
    card(out, "infra-count", "infrastructure problems", t.infra, true);
    out.push_str("</div><table class=\"kv\">");
    let crash_model = serde_json::to_value(r.crash_model)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let mutant = r
        .mutant
        .clone()
        .unwrap_or_else(|| "none (stock kernel)".into());
    let modules = r
        .modules
        .iter()
        .map(|m| format!("{} {} (sha256 {})", m.name, m.args.join(" "), m.sha256))
        .collect::<Vec<_>>()
        .join("; ");
    let shard = shard_line(r);
    let time = if r.phases.checks > 0 {
        r.phases.summary_lines().join("; ")
    } else {
        String::new()
    };
    for (k, v) in [
        ("kernel", r.kernel.as_str()),
        ("accelerator", r.accelerator.as_str()),
        ("workload VM start", r.start.as_str()),
        ("crash model", crash_model.as_str()),
        ("mutant", mutant.as_str()),
        (
            "modules",
            if modules.is_empty() {
                "none"
            } else {
                modules.as_str()
            },
        ),
        ("file system", r.filesystem.name()),
        ("profile", r.profile.as_str()),
        ("image", r.image.as_str()),
        ("powercut", r.powercut.as_str()),
        ("rng", r.rng.as_str()),
        ("shard", shard.as_str()),
        ("where the time went", time.as_str()),
    ] {
        if (k == "shard" || k == "where the time went") && v.is_empty() {
            continue;
        }
        let _ = write!(out, "<tr><th>{}</th><td>{}</td></tr>", escape(k), escape(v));
    }
    out.push_str("</table>");
    if !r.by_verdict.is_empty() {
        out.push_str("<h3>Checks by verdict</h3><table class=\"verdicts\">");
        for (v, n) in &r.by_verdict {
            let class = v
                .parse::<Verdict>()
                .map_or("v-none", |v| verdict_class(v, false));
            let _ = write!(
                out,
                "<tr><td><span class=\"pill {class}\">{}</span></td><td>{n}</td></tr>",
                escape(v)
            );
        }
        out.push_str("</table>");
    }
    let mut lists = |title: &str, items: &[String]| {
        if !items.is_empty() {
            let _ = write!(out, "<h3>{}</h3><ul>", escape(title));
            for i in items {
                let _ = write!(out, "<li><code>{}</code></li>", escape(i));
            }
            out.push_str("</ul>");
        }
    };
    lists("Infrastructure problems", &t.infra_problems);
    lists(
        "Known bugs (matched by suppressions)",
        &t.suppressed.iter().cloned().collect::<Vec<_>>(),
    );
    lists(
        "Files of the run directory that could not be read",
        &r.notes,
    );
    let kl = &r.kernel_log;
    lists(
        &format!(
            "Kernel complaints in the guest consoles: {} in {} console log(s) (informational: no verdict changed)",
            kl.total, kl.consoles
        ),
        &kl.complaints
            .iter()
            .map(|c| format!("{}:{}: {}", c.console, c.line, c.text))
            .collect::<Vec<_>>(),
    );
    out.push_str("</section>");
}

fn seed_summary(s: &SeedEntry) -> String {
    let bad = s
        .crash_points
        .iter()
        .filter(|c| c.verdict != Verdict::Pass)
        .count();
    let file = s
        .file
        .as_ref()
        .map_or_else(String::new, |f| format!(" ({f})"));
    format!(
        "{}{file}: {} ops, {} crash points, {} not passing",
        s.item,
        s.ops.len(),
        s.crash_points.len(),
        bad
    )
}

fn seeds(r: &Report, out: &mut String) {
    out.push_str(
        "<section id=\"seeds\"><h2>Seeds and workloads</h2>\
         <p><label><input type=\"checkbox\" id=\"only-problems\"> show only seeds and workloads that did not pass</label> \
         · colours: <span class=\"pill v-pass\">pass</span> <span class=\"pill v-bug\">kernel bug</span> \
         <span class=\"pill v-known\">known bug</span> <span class=\"pill v-infra\">infrastructure</span> \
         <span class=\"pill v-none\">incomplete</span> · ⚡ marks a crash point</p><div id=\"seed-list\">",
    );
    if r.seeds.is_empty() {
        out.push_str("<p class=\"muted\">No seed has started.</p>");
    }
    for s in &r.seeds {
        let open = if s.status == SeedStatus::Pass {
            ""
        } else {
            " open"
        };
        let _ = write!(
            out,
            "<details class=\"seed s-{}\" id=\"{}\"{open}><summary><span class=\"pill {}\">{}</span> {}</summary>",
            s.status.name(),
            escape(&s.item.anchor()),
            status_class(s.status),
            s.status.name(),
            escape(&seed_summary(s))
        );
        if let Some(line) = &s.infra {
            let _ = write!(out, "<p><code>{}</code></p>", escape(line));
        }
        timeline::render(s, out);
        out.push_str("</details>");
    }
    out.push_str("</div></section>");
}

fn failures(r: &Report, data: &RunData, out: &mut String) {
    let _ = write!(
        out,
        "<section id=\"failures\"><h2>Failures ({} distinct, {} instances)</h2>",
        r.failures.len(),
        r.failures.iter().map(|f| f.occurrences).sum::<usize>()
    );
    if r.failures.is_empty() {
        out.push_str("<p class=\"muted\">No failure.</p>");
    }
    for f in &r.failures {
        let dir = data
            .failures
            .iter()
            .find(|d| Some(d.slug().as_str()) == f.slug());
        let console = f.slug().and_then(|s| data.failure_consoles.get(s));
        failure(f, dir, console, out);
    }
    out.push_str("</section>");
}

/// What the summary says about shards: this directory's shard, or what a merge holds and
/// lacks (empty for a whole campaign).
fn shard_line(r: &Report) -> String {
    if let Some(s) = r.shard {
        return format!("{s} (this run directory holds one shard of its campaign)");
    }
    if r.merged.is_empty() {
        return String::new();
    }
    let runs: Vec<String> = r
        .merged
        .iter()
        .map(|m| match m.shard {
            Some(s) => format!("{s} ({})", m.dir),
            None => m.dir.clone(),
        })
        .collect();
    let mut line = format!("merged: {}", runs.join(", "));
    if !r.missing_shards.is_empty() {
        let missing: Vec<String> = r.missing_shards.iter().map(ToString::to_string).collect();
        line.push_str(&format!("; MISSING: {}", missing.join(", ")));
    }
    line
}

fn failure(
    f: &FailureEntry,
    dir: Option<&FailureDir>,
    console: Option<&ConsoleTail>,
    out: &mut String,
) {
    let verdict = f.verdict.name();
    let _ = write!(
        out,
        "<article class=\"failure{}\" id=\"{}\"><h3><span class=\"pill {}\">{}</span> {}</h3><table class=\"kv\">",
        if f.suppressed { " known" } else { "" },
        escape(&failure_anchor(f.slug().unwrap_or(&f.title))),
        verdict_class(f.verdict, f.suppressed),
        escape(verdict),
        escape(&f.bucket)
    );
    let items: Vec<String> = f.items.iter().map(ToString::to_string).collect();
    for (k, v) in [
        ("first instance", Some(f.title.clone())),
        ("first seen in", Some(f.first.to_string())),
        ("crash point", Some(f.point.clone())),
        ("directory", f.dir.clone()),
        (
            "other shards' directories",
            (!f.other_dirs.is_empty()).then(|| f.other_dirs.join(", ")),
        ),
        (
            "instances",
            Some(format!(
                "{} check{} in {}",
                f.occurrences,
                if f.occurrences == 1 { "" } else { "s" },
                items.join(", ")
            )),
        ),
    ] {
        if v.is_none() && k.starts_with("other") {
            continue;
        }
        let v = v.unwrap_or_else(|| "none (see journal.jsonl)".into());
        let _ = write!(out, "<tr><th>{k}</th><td>{}</td></tr>", escape(&v));
    }
    out.push_str("</table>");
    instances(f, out);
    match (&f.reproduce, &f.dir) {
        (Some(cmd), Some(d)) => {
            let _ = write!(
                out,
                "<p>Reproduce (from the checkout; also <code>{}/reproduce.sh</code>):</p><pre class=\"cmd\">{}</pre>",
                escape(d),
                escape(cmd)
            );
        }
        _ => out.push_str("<p class=\"muted\">No reproduce.sh.</p>"),
    }
    let Some(dir) = dir else {
        out.push_str("</article>");
        return;
    };
    if let Some(o) = &dir.outcome {
        for finding in &o.findings {
            if let Some(lost) = &dir.lost {
                for s in lost.behind(
                    &finding.file,
                    finding.start,
                    finding.end.max(finding.start + 1),
                ) {
                    let _ = write!(out, "<p class=\"lost\">Lost: {}</p>", escape(s));
                }
            }
            hexdiff::render_finding(finding, out);
        }
        if !o.detail.is_empty() {
            let _ = write!(out, "<p>Detail:</p><pre>{}</pre>", escape(&o.detail));
        }
    }
    if let Some(lost) = &dir.lost {
        render_lost(lost, out);
    }
    if !dir.diff.is_empty() {
        let _ = write!(
            out,
            "<details><summary>diff.txt</summary><pre>{}</pre></details>",
            escape(&dir.diff)
        );
    }
    if let Some(c) = console {
        let _ = write!(
            out,
            "<details><summary>{} (last {CONSOLE_TAIL_LINES} lines)</summary><pre>{}</pre></details>",
            escape(&c.path),
            escape(&c.tail)
        );
    }
    out.push_str("</article>");
}

/// Every instance of a bucket, folded.
fn instances(f: &FailureEntry, out: &mut String) {
    let _ = write!(
        out,
        "<details class=\"instances\"><summary>{} instance{}</summary><table class=\"kv\">",
        f.instances.len(),
        if f.instances.len() == 1 { "" } else { "s" }
    );
    for i in &f.instances {
        let _ = write!(
            out,
            "<tr><td><a href=\"#{}\">{}</a></td><td>{}</td><td><code>{}</code></td></tr>",
            escape(&i.item.anchor()),
            escape(&i.item.to_string()),
            escape(&i.model),
            escape(&i.title)
        );
    }
    out.push_str("</table></details>");
}

/// The cache lines a cache-model crash state lost: one sentence per range (file range,
/// storing code, the missing flush or fence), then what could not be attributed.
fn render_lost(lost: &crate::cache_model::lost::LostReport, out: &mut String) {
    let _ = write!(
        out,
        "<h4>Lost cache lines ({} of {} in flight at the cut, variant {})</h4><ul class=\"lost\">",
        lost.lost_lines, lost.in_flight, lost.cut.variant
    );
    for s in &lost.sentences {
        let _ = write!(out, "<li>{}</li>", escape(s));
    }
    out.push_str("</ul>");
    for n in &lost.notes {
        let _ = write!(out, "<p class=\"muted\">note: {}</p>", escape(n));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x&y")</script> 'q'"#),
            "&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt; &#39;q&#39;"
        );
        assert_eq!(escape("plain f0 → f1"), "plain f0 → f1");
    }

    #[test]
    fn verdict_colours_separate_bugs_known_bugs_and_infrastructure() {
        assert_eq!(verdict_class(Verdict::Pass, false), "v-pass");
        assert_eq!(verdict_class(Verdict::DataLoss, false), "v-bug");
        assert_eq!(verdict_class(Verdict::DataLoss, true), "v-known");
        assert_eq!(verdict_class(Verdict::Timeout, false), "v-infra");
    }

    #[test]
    fn page_of_a_synthetic_run_is_escaped_and_shows_the_counts() {
        let data = crate::report::testdata::synthetic_run();
        let report = crate::report::build_report(&data);

        let page = render(&report, &data);

        assert!(page.contains("<strong id=\"failure-count\">2</strong>"));
        assert!(page.contains("<strong id=\"distinct-failure-count\">1</strong>"));
        assert!(page.contains("id=\"workload-pwrite-fsync\""));
        assert!(page.contains("<strong id=\"infra-count\">1</strong>"));
        assert!(page.contains("6.12.95+deb12-amd64") && page.contains("m5"));
        assert!(page.contains(&format!("id=\"f-{}\"", crate::report::testdata::SLUG)));
        assert!(page.contains("cargo run --release -- campaign --mutant m5 --seeds 1..=1"));
        assert!(
            page.contains("5a 5a 5a <span class=\"d\">00</span> <span class=\"d\">00</span> 5a")
        );
        assert!(!page.contains("f<0>"), "unescaped file name in the page");
        assert!(
            !page.contains("http://") && !page.contains("https://"),
            "external resource"
        );
    }
}
