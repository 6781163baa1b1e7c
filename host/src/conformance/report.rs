//! The pass/fail table a conformance run prints.

use std::fmt::Write;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail,
    /// What the run found and does not judge (state a network keeps).
    Info,
}

#[derive(Debug)]
pub struct Row {
    pub check: String,
    pub outcome: Outcome,
    pub detail: String,
}

#[derive(Debug, Default)]
pub struct Report {
    pub rows: Vec<Row>,
}

impl Report {
    /// Records a check: passed when `result` is `Ok(detail)`.
    pub fn check(&mut self, check: impl Into<String>, result: Result<String, String>) {
        let (outcome, detail) = match result {
            Ok(d) => (Outcome::Pass, d),
            Err(d) => (Outcome::Fail, d),
        };
        self.rows.push(Row { check: check.into(), outcome, detail });
    }

    pub fn info(&mut self, check: impl Into<String>, detail: impl Into<String>) {
        self.rows.push(Row { check: check.into(), outcome: Outcome::Info, detail: detail.into() });
    }

    pub fn failures(&self) -> usize {
        self.rows.iter().filter(|r| r.outcome == Outcome::Fail).count()
    }

    pub fn table(&self) -> String {
        let width = self.rows.iter().map(|r| r.check.len()).max().unwrap_or(5).max(5);
        let mut out = String::new();
        let _ = writeln!(out, "{:<width$}  {:<4}  detail", "check", "");
        for r in &self.rows {
            let mark = match r.outcome {
                Outcome::Pass => "pass",
                Outcome::Fail => "FAIL",
                Outcome::Info => "info",
            };
            let _ = writeln!(out, "{:<width$}  {mark}  {}", r.check, r.detail.replace('\n', " "));
        }
        let passed = self.rows.iter().filter(|r| r.outcome == Outcome::Pass).count();
        let _ = writeln!(out, "{passed} passed, {} failed", self.failures());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_counted_and_marked() {
        let mut r = Report::default();
        r.check("ADD", Ok("10.0.0.2/24".into()));
        r.check("DEL again", Err("code 100: gone".into()));
        r.info("kept", "bridge");
        assert_eq!(r.failures(), 1);
        let table = r.table();
        assert!(table.contains("DEL again  FAIL  code 100: gone"), "{table}");
        assert!(table.ends_with("1 passed, 1 failed\n"), "{table}");
    }
}
