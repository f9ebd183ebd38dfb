//! The examples in CLI.md are real output: every `$ turbowish ...` line of
//! its `console` blocks that reads only the fixtures and writes to standard
//! output is run in `turbowish-snapshot/tests/fixtures`, and its output must match the lines
//! that follow it in the block.

mod cli_support;

use cli_support::{fixture_dir, text};

#[test]
fn cli_md_examples_are_current() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/CLI.md")).unwrap();
    let mut checked = 0;
    let mut in_console = false;
    let mut current: Option<(String, String)> = None;
    let mut examples: Vec<(String, String)> = Vec::new();
    for line in doc.lines() {
        if line.starts_with("```") {
            in_console = line == "```console";
            examples.extend(current.take());
            continue;
        }
        if !in_console {
            continue;
        }
        if let Some(command) = line.strip_prefix("$ ") {
            examples.extend(current.take());
            current = Some((command.to_owned(), String::new()));
        } else if let Some((_, output)) = &mut current {
            output.push_str(line);
            output.push('\n');
        }
    }
    for (command, expected) in examples {
        // `...; echo "exit $?"` documents the exit status too.
        let (run, shows_status) = match command.strip_suffix("; echo \"exit $?\"") {
            Some(run) => (run, true),
            None => (command.as_str(), false),
        };
        let Some(args) = runnable(run) else {
            continue;
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_turbowish"));
        let out = cmd.args(&args).current_dir(fixture_dir()).output().unwrap();
        let mut found = text(&out.stderr) + &text(&out.stdout);
        if shows_status {
            found.push_str(&format!("exit {}\n", out.status.code().unwrap_or(-1)));
        }
        assert!(
            found == expected,
            "CLI.md is stale for `{command}`:\n--- found\n{found}--- documented\n{expected}"
        );
        checked += 1;
    }
    // The report, task, no-samples, three heap-walk, chains, DOT, two
    // folded, two diff, and the five bad-input examples.
    assert_eq!(checked, 16, "examples checked");
}

/// The arguments of a documented command that only reads fixtures and
/// prints, or `None`.
fn runnable(command: &str) -> Option<Vec<String>> {
    let rest = command.strip_prefix("turbowish ")?;
    if rest.contains(['|', ';', '>']) {
        return None;
    }
    let args: Vec<String> = rest.split_whitespace().map(str::to_owned).collect();
    let writes_file = args.windows(2).any(|w| w[0] == "-o" && w[1] != "-");
    let reads_missing = args
        .iter()
        .any(|a| a.ends_with(".json") && !fixture_dir().join(a).exists());
    (!writes_file && !reads_missing).then_some(args)
}
