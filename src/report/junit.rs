//! JUnit XML (`--junit FILE`): one testcase per threshold and per check, so
//! CI systems show what held and what did not. A threshold's testcase fails
//! when the threshold failed (the same ones that make the exit code 99); a
//! check's fails when any request failed it, with its pass rate.

use std::fmt::Write;

use super::{Exporter, ReportError, Run, escape};

pub struct JUnit;

impl Exporter for JUnit {
    fn file_name(&self) -> &'static str {
        "junit.xml"
    }

    fn render(&self, run: &Run<'_>) -> Result<Vec<u8>, ReportError> {
        let s = &run.summary;
        let secs = s.run.elapsed.as_secs_f64();
        let mut cases = String::new();
        let mut failures = 0;
        for v in &s.thresholds {
            let _ = write!(
                cases,
                "    <testcase classname=\"thresholds\" name=\"{}\" time=\"{secs:.3}\"",
                escape(&v.threshold)
            );
            if v.ok {
                cases.push_str("/>\n");
            } else {
                failures += 1;
                let message = format!("observed {}", v.shown());
                let _ = write!(
                    cases,
                    ">\n      <failure type=\"threshold\" message=\"{m}\">{m}</failure>\n    </testcase>\n",
                    m = escape(&message)
                );
            }
        }
        for c in &s.checks {
            let _ = write!(
                cases,
                "    <testcase classname=\"checks\" name=\"{}\" time=\"{secs:.3}\"",
                escape(&c.name)
            );
            if c.fails == 0 {
                cases.push_str("/>\n");
            } else {
                failures += 1;
                let mut message = format!(
                    "{} of {} requests failed the check ({:.2}% passed)",
                    c.fails,
                    c.passes + c.fails,
                    c.rate * 100.0
                );
                if let Some(note) = c.cut_note() {
                    message.push_str(&format!("; {note}"));
                }
                let _ = write!(
                    cases,
                    ">\n      <failure type=\"check\" message=\"{m}\">{m}</failure>\n    </testcase>\n",
                    m = escape(&message)
                );
            }
        }
        let tests = s.thresholds.len() + s.checks.len();
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<testsuites name=\"reprise\" tests=\"{tests}\" failures=\"{failures}\" time=\"{secs:.3}\">"
        );
        let _ = writeln!(
            out,
            "  <testsuite name=\"reprise {}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" time=\"{secs:.3}\" timestamp=\"{}\">",
            escape(&s.run.target),
            escape(&s.run.start)
        );
        let _ = writeln!(
            out,
            "    <properties>\n      <property name=\"command\" value=\"{}\"/>\n      <property name=\"model\" value=\"{}\"/>\n      <property name=\"profile\" value=\"{}\"/>\n    </properties>",
            escape(&s.run.command),
            escape(&s.run.model),
            escape(&s.run.profile)
        );
        out.push_str(&cases);
        out.push_str("  </testsuite>\n</testsuites>\n");
        Ok(out.into_bytes())
    }
}
