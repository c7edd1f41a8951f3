//! Exit check `rfc9112_conformance`: reads the RFC 9112 table of `docs/milestones/08-http11.md`
//! (between `<!-- rfc-table:begin -->` and `<!-- rfc-table:end -->`, rows
//! `| section | requirement | `test_name` |`), runs exactly those tests with
//! `cargo test -p m08-http11 --test rfc9112 -- --exact …` and checks each exists and passed;
//! then runs the framing cases of the smuggling corpus (tests/data, copied from
//! shared/corpora) through a real session, whole and byte-at-a-time (the cases to reject also
//! with the peer's side left open, no FIN). Prints `{"pass","detail"}`.

use std::path::Path;
use std::process::Command;

use m08_http11::conformance::{FRAMING_CATEGORIES, rfc_table, run_corpus};
use m08_http11::lab::{print_check, run_main};

fn main() -> std::process::ExitCode {
    run_main(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let doc = std::fs::read_to_string(root.join("docs/milestones/08-http11.md"))?;
        let rows = rfc_table(&doc);
        if rows.len() < 15 {
            return Err(std::io::Error::other(format!(
                "only {} rows in the RFC table",
                rows.len()
            )));
        }
        let mut args: Vec<String> = [
            "test",
            "--quiet",
            "-p",
            "m08-http11",
            "--test",
            "rfc9112",
            "--",
            "--exact",
            "--test-threads=2",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.extend(rows.iter().map(|(_, t)| t.clone()));
        // Verbose result lines come with --format=pretty (the default without --quiet on the
        // test binary): ask libtest for them explicitly.
        args.push("--format=pretty".into());
        eprintln!("running {} tables rows ...", rows.len());
        let out = Command::new("cargo")
            .current_dir(&root)
            .args(&args)
            .output()?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mut problems = Vec::new();
        for (section, test) in &rows {
            let ok = stdout
                .lines()
                .any(|l| l.trim() == format!("test {test} ... ok"));
            if !ok {
                let failed = stdout
                    .lines()
                    .any(|l| l.trim() == format!("test {test} ... FAILED"));
                problems.push(format!(
                    "{section}: `{test}` {}",
                    if failed { "failed" } else { "does not exist" }
                ));
            }
        }
        let json = std::fs::read_to_string(
            root.join("crates/m08-http11/tests/data/smuggling-cases.json"),
        )?;
        let results = run_corpus(&json).map_err(|e| std::io::Error::other(e.to_string()))?;
        let framing: Vec<_> = results
            .iter()
            .filter(|r| FRAMING_CATEGORIES.contains(&r.category.as_str()))
            .collect();
        let framing_pass = framing.iter().filter(|r| r.pass).count();
        let all_pass = results.iter().filter(|r| r.pass).count();
        for r in framing.iter().filter(|r| !r.pass) {
            problems.push(format!("{} [{}]: {}", r.id, r.category, r.detail));
        }
        let pass = problems.is_empty();
        let detail = format!(
            "{} RFC 9112/9110 table rows pass: {}; smuggling corpus framing cases {framing_pass}/{} pass, all cases {all_pass}/{} (whole and byte-at-a-time; rejections also without FIN){}",
            rows.len(),
            rows.len() - problems.iter().filter(|p| p.contains('`')).count(),
            framing.len(),
            results.len(),
            if pass {
                String::new()
            } else {
                format!("; {}", problems.join("; "))
            }
        );
        eprintln!("{detail}");
        print_check(pass, &detail);
        Ok(())
    })
}
