//! The figures of each row, printed as one table and notes below it.

use crate::call::Tally;
use crate::node::Leftovers;
use std::time::Duration;

pub struct Row {
    pub name: String,
    pub tally: Tally,
    /// Addresses handed to two successful ADDs at once (rows that ADD in bulk).
    pub dup_ips: Option<usize>,
    pub leftovers: Leftovers,
    pub notes: Vec<String>,
}

impl Row {
    pub fn new(name: impl Into<String>) -> Row {
        Row {
            name: name.into(),
            tally: Tally::default(),
            dup_ips: None,
            leftovers: Leftovers::default(),
            notes: vec![],
        }
    }

    pub fn note(&mut self, s: impl Into<String>) {
        self.notes.push(s.into());
    }

    /// Whether the row misses the goal: any failure, duplicate or leftover.
    pub fn bad(&self) -> bool {
        self.tally.failures() > 0 || self.dup_ips.unwrap_or(0) > 0 || self.leftovers.total() > 0
    }
}

pub fn print(rows: &[(usize, Row)]) {
    println!(
        "\n{:<2} {:<50} {:>6} {:>6} {:>7} {:>7} {:>4}  leftovers",
        "#", "test", "calls", "ok", "code 11", "failed", "dup"
    );
    for (i, r) in rows {
        let dup = r.dup_ips.map_or("-".to_owned(), |d| d.to_string());
        println!(
            "{i:<2} {:<50} {:>6} {:>6} {:>7} {:>7} {dup:>4}  {}",
            r.name,
            r.tally.calls,
            r.tally.ok,
            r.tally.refused,
            r.tally.failures(),
            r.leftovers
        );
    }
    println!(
        "\ncode 11 = refused with \"try again later\" where the daemon may refuse (not a failure); failed = any other \
         error;\ndup = addresses given to two live containers; leftovers = veths, leases, nft entries and state files \
         left after DEL."
    );
    for (i, r) in rows {
        println!("\n{i}. {}", r.name);
        for (label, (n, msg)) in &r.tally.failed {
            println!("   failed {label}: {n}  e.g. {}", clip(msg, 160));
        }
        for note in &r.notes {
            println!("   {note}");
        }
    }
}

fn clip(s: &str, max: usize) -> String {
    let s = s.trim();
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// "p50 a, p99 b, max c ms" of samples.
pub fn spread(samples: &[Duration]) -> String {
    if samples.is_empty() {
        return "no samples".into();
    }
    let mut s = samples.to_vec();
    s.sort();
    let p = |q| wasmcni_bench::percentile(&s, q);
    format!("p50 {:.1}, p99 {:.1}, max {:.1} ms", p(0.5), p(0.99), p(1.0))
}
