//! Exit check `rfc1945_conformance`: reads the RFC 1945 compliance table of
//! `docs/milestones/04-http10.md` (rows `| §x.y | requirement | test_name |`), runs
//! `cargo test -p m04-http10` once and checks that every listed test exists and passed.
//! Prints `{"pass", "detail"}`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use m04_http10::lab;

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let doc = std::fs::read_to_string(root.join("docs/milestones/04-http10.md"))?;
        let section = doc.split("## RFC 1945 compliance").nth(1).ok_or_else(|| {
            std::io::Error::other("write-up has no `## RFC 1945 compliance` section")
        })?;
        let section = section.split("\n## ").next().unwrap_or(section);
        let mut rows: Vec<(String, String)> = Vec::new();
        for line in section.lines() {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            if cells.len() >= 4 && cells[1].starts_with('§') {
                for t in cells[3].split(',') {
                    let t = t.trim().trim_matches('`');
                    if !t.is_empty() {
                        rows.push((cells[1].to_owned(), t.to_owned()));
                    }
                }
            }
        }
        if rows.len() < 10 {
            return Err(std::io::Error::other(format!(
                "only {} rows in the compliance table",
                rows.len()
            )));
        }
        eprintln!(
            "running cargo test -p m04-http10 for {} table entries ...",
            rows.len()
        );
        let out = Command::new("cargo")
            .current_dir(&root)
            .args([
                "test",
                "--quiet",
                "-p",
                "m04-http10",
                "--",
                "--test-threads=2",
            ])
            .output()?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        // libtest: "test NAME ... ok" (with --quiet only failures are named; so run listing too)
        let list = Command::new("cargo")
            .current_dir(&root)
            .args(["test", "--quiet", "-p", "m04-http10", "--", "--list"])
            .output()?;
        let listed = String::from_utf8_lossy(&list.stdout);
        let existing: Vec<&str> = listed
            .lines()
            .filter_map(|l| l.strip_suffix(": test"))
            .collect();
        let failed: Vec<&str> = stdout
            .lines()
            .filter_map(|l| {
                l.strip_prefix("---- ")
                    .and_then(|r| r.split_whitespace().next())
            })
            .collect();
        let mut problems = Vec::new();
        let mut by_section: BTreeMap<&str, usize> = BTreeMap::new();
        for (sec, test) in &rows {
            *by_section.entry(sec.as_str()).or_default() += 1;
            if !existing
                .iter()
                .any(|e| e == test || e.ends_with(&format!("::{test}")))
            {
                problems.push(format!("{sec}: test `{test}` does not exist"));
            } else if failed
                .iter()
                .any(|f| f == test || f.ends_with(&format!("::{test}")))
            {
                problems.push(format!("{sec}: test `{test}` failed"));
            }
        }
        if !out.status.success() && failed.is_empty() {
            problems.push(format!(
                "cargo test failed: {}",
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            ));
        }
        if !out.status.success() && problems.is_empty() {
            problems.push(format!(
                "cargo test failed (tests outside the table): {failed:?}"
            ));
        }
        let pass = problems.is_empty();
        let detail = format!(
            "{} RFC 1945 sections, {} table entries, all tests exist and pass: {pass}{}",
            by_section.len(),
            rows.len(),
            if pass {
                String::new()
            } else {
                format!("; {}", problems.join("; "))
            }
        );
        eprintln!("{detail}");
        lab::print_check(pass, &detail);
        Ok(())
    })
}
