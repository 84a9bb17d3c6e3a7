//! The documentation against the binary: no page offers an option a command lacks, and every
//! exit status the pages give is one the binary has a name for. The pages are read as an
//! operator reads them; the commands and their options come from the binary's own `--help`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use common::*;
use mesos_executor_shim::error::Failure;

/// Every page an operator reads: the README, `docs/`, and the READMEs beside the deployment.
fn pages() -> Vec<(String, String)> {
    let mut paths = vec![repo().join("README.md"), repo().join("docker/README.md")];
    let mut docs: Vec<_> = std::fs::read_dir(repo().join("docs"))
        .expect("the docs/ directory")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    paths.extend(docs);
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p)
                .unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
            (p.strip_prefix(repo()).unwrap().display().to_string(), text)
        })
        .collect()
}

/// `mesos-executor-shim ARGS --help`, which must succeed.
fn help(args: &[&str]) -> String {
    let out = Command::new(shim_bin())
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?} --help: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The long options a help text lists (`--work-dir <WORK_DIR>` gives `--work-dir`).
fn options_of(help: &str) -> BTreeSet<String> {
    help.lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with('-'))
        .flat_map(|l| l.split([' ', ',', '=']))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(str::to_string)
        .collect()
}

/// Every command the binary has, with the long options its help lists.
fn commands() -> BTreeMap<String, BTreeSet<String>> {
    let top = help(&[]);
    let names: Vec<String> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect();
    assert!(
        names.iter().any(|n| n == "gc") && names.iter().any(|n| n == "doctor"),
        "no commands found in --help: {top}"
    );
    names
        .into_iter()
        .map(|name| {
            let options = options_of(&help(&[&name]));
            (name, options)
        })
        .collect()
}

/// The inline code spans of a text, and each line of its indented or fenced code blocks.
fn code(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced || line.starts_with("    ") {
            found.push(line.trim().to_string());
            continue;
        }
        found.extend(line.split('`').skip(1).step_by(2).map(str::to_string));
    }
    found
}

/// In a piece of code, the command run with the binary and the options given to it: the words
/// after `mesos-executor-shim` (or a command name at the start), up to a pipe or `&&`.
fn invocation<'a>(
    code: &'a str,
    commands: &BTreeMap<String, BTreeSet<String>>,
) -> Option<(&'a str, Vec<&'a str>)> {
    let words: Vec<&str> = code.split_whitespace().collect();
    let start = match words
        .iter()
        .position(|w| w.ends_with("mesos-executor-shim"))
    {
        Some(at) => at + 1,
        None => 0,
    };
    let command = *words.get(start)?;
    if !commands.contains_key(command) {
        return None;
    }
    let options = words[start + 1..]
        .iter()
        .take_while(|w| !matches!(**w, "|" | "&&" | ";" | "--"))
        .map(|w| w.trim_matches(['[', ']', ',', '.', '(', ')']))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| w.split('=').next().unwrap())
        .collect();
    Some((command, options))
}

/// Clauses that say commands take options: `` `ps` and `gc` take `--label KEY[=VALUE]` ``, the
/// commands named right before "take(s)" (nothing else between them) and what follows, to the
/// end of the clause.
fn take_clauses(
    text: &str,
    commands: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<(Vec<String>, String)> {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut found = Vec::new();
    for verb in [" take ", " takes "] {
        for (at, _) in text.match_indices(verb) {
            let (subject, rest) = (&text[..at], &text[at + verb.len()..]);
            let mut named = Vec::new();
            let mut words = subject.rsplit(' ');
            for word in &mut words {
                let word = word.trim_end_matches(',');
                match word.strip_prefix('`').and_then(|w| w.strip_suffix('`')) {
                    Some(command) if commands.contains_key(command) => {
                        named.push(command.to_string())
                    }
                    _ if matches!(word, "and" | "or") => {}
                    _ => break,
                }
            }
            let object = rest.split([';', ':']).next().unwrap();
            let object = object.split(". ").next().unwrap();
            // "take nothing on trust" is no list of options.
            if !named.is_empty() && rest.starts_with("`--") {
                found.push((named, object.to_string()));
            }
        }
    }
    found
}

/// What `page` offers that a command lacks, and how many options it offers in all.
fn wrong_options(
    page: &str,
    text: &str,
    commands: &BTreeMap<String, BTreeSet<String>>,
) -> (Vec<String>, usize) {
    let mut wrong = Vec::new();
    let mut checked = 0;
    for piece in code(text) {
        if let Some((command, options)) = invocation(&piece, commands) {
            for option in options {
                checked += 1;
                if !commands[command].contains(option) {
                    wrong.push(format!("{page}: `{piece}`: {command} has no {option}"));
                }
            }
        }
    }
    for (named, object) in take_clauses(text, commands) {
        for command in &named {
            let spans = code(&object);
            for option in spans.iter().filter_map(|c| c.split([' ', '=']).next()) {
                if !option.starts_with("--") {
                    continue;
                }
                checked += 1;
                if !commands[command].contains(option) {
                    wrong.push(format!("{page}: \"{object}\": {command} has no {option}"));
                }
            }
        }
    }
    (wrong, checked)
}

/// No page offers a command an option it lacks: in every invocation the pages show
/// (`gc --every 5m`, `mesos-executor-shim doctor --json`), and where a sentence says commands
/// take options (`` `ps` and `gc` take `--label KEY[=VALUE]` ``).
#[test]
fn the_docs_offer_no_option_a_command_lacks() {
    let commands = commands();
    let mut wrong = Vec::new();
    let mut checked = 0;
    for (page, text) in pages() {
        let (page_wrong, page_checked) = wrong_options(&page, &text, &commands);
        wrong.extend(page_wrong);
        checked += page_checked;
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(
        checked >= 10,
        "only {checked} options found in the docs: the reader is broken"
    );
}

/// The reader above finds what it is for: an invocation, a command after the binary's path, and
/// a sentence, each offering an option its command lacks; and passes what is there.
#[test]
fn the_docs_reader_finds_an_option_a_command_lacks() {
    let commands = commands();
    let page = "Run `gc --every 5m --color` or\n\n    docker exec a /usr/local/bin/mesos-executor-shim ps --json --wide-open\n\n\
                `doctor` and `ps` take `--json` and `--config FILE`; `run` takes `--config FILE`. \
                `ps` takes nothing on trust, not `--pid=host`.";
    let (wrong, checked) = wrong_options("test", page, &commands);
    assert_eq!(checked, 9, "{wrong:?}");
    assert_eq!(wrong.len(), 3, "{wrong:#?}");
    for lacking in [
        "gc has no --color",
        "ps has no --wide-open",
        "run has no --config",
    ] {
        assert!(
            wrong.iter().any(|w| w.ends_with(lacking)),
            "{lacking}: {wrong:#?}"
        );
    }
}
/// The shim's own failures by status (docs/exit-statuses.md) are the named classes of
/// `src/error.rs`, every one and no other; and every status the operator commands' table
/// gives is 0, 1 (a check or removal failed), 2 (bad arguments) or one of those.
#[test]
fn the_exit_statuses_in_the_docs_are_the_binarys() {
    let named: Vec<u8> = Failure::ALL.map(Failure::exit_code).to_vec();
    let page = std::fs::read_to_string(repo().join("docs/exit-statuses.md")).unwrap();
    let listed: Vec<u8> = page
        .lines()
        .skip_while(|l| !l.starts_with("| status | meaning |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| l.split('|').nth(1).unwrap().trim().parse().unwrap())
        .collect();
    assert_eq!(listed, named, "docs/exit-statuses.md against src/error.rs");

    let operating = std::fs::read_to_string(repo().join("docs/operating.md")).unwrap();
    let rows: Vec<&str> = operating
        .lines()
        .skip_while(|l| !l.starts_with("| command | what it does | exit status |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .collect();
    assert!(
        rows.len() >= 3,
        "no table of the operator commands in docs/operating.md"
    );
    for row in rows {
        let statuses = row.rsplit('|').nth(1).unwrap();
        let numbers: Vec<u8> = statuses
            .split(|c: char| !c.is_ascii_digit())
            .filter(|n| !n.is_empty())
            .map(|n| n.parse().unwrap())
            .collect();
        assert!(!numbers.is_empty(), "no status in {row}");
        for n in numbers {
            assert!(
                [0, 1, 2].contains(&n) || named.contains(&n),
                "docs/operating.md gives status {n}, which the binary has no name for: {row}"
            );
        }
    }
}

/// A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces as hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Every link between the pages leads somewhere: a file of the repository, and where it names a
/// section, a heading of that file.
#[test]
fn every_link_between_the_pages_leads_to_a_page_and_its_section() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for (page, text) in pages() {
        let dir = repo().join(&page).parent().unwrap().to_path_buf();
        for link in text.split("](").skip(1) {
            let target = link.split(')').next().unwrap();
            if target.contains("://") {
                continue;
            }
            let (file, section) = target.split_once('#').unwrap_or((target, ""));
            let path = if file.is_empty() {
                repo().join(&page)
            } else {
                dir.join(file)
            };
            checked += 1;
            if !path.exists() {
                broken.push(format!("{page}: {target}: no {}", path.display()));
                continue;
            }
            if section.is_empty() {
                continue;
            }
            let headings: Vec<String> = std::fs::read_to_string(&path)
                .unwrap()
                .lines()
                .filter_map(|l| {
                    l.trim_start_matches('#')
                        .strip_prefix(' ')
                        .filter(|_| l.starts_with('#'))
                })
                .map(anchor)
                .collect();
            if !headings.iter().any(|h| h == section) {
                broken.push(format!("{page}: {target}: no such section in {file}"));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
    assert!(
        checked >= 30,
        "only {checked} links found: the reader is broken"
    );
}
