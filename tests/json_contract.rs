//! The `--json` contract: every command's report and every kind of error
//! validates against schemas/reports.schema.json (through
//! `common::json_report`, which the other test files use too), the schema
//! names every report the code prints, and the closed set of error kinds is
//! the same in the code, the schema and the README.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command as Process, Stdio};

use common::{airlock, json_report, keygen, sample_tree};
use serde_json::{Value, json};

fn repo(path: &str) -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

fn schema() -> Value {
    serde_json::from_str(&repo("schemas/reports.schema.json")).unwrap()
}

/// Runs airlock with `--json` and `args`, expecting `code`; the validated document.
fn run(args: &[&str], code: i32) -> Value {
    let out = airlock().arg("--json").args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(code), "airlock {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    json_report(&out.stdout)
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn every_command_reports_in_its_schema() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name);
    let keygen_report = run(&["keygen", "--unencrypted", "--out", path(&d("alice"))], 0);
    assert_eq!(keygen_report["schema"], "airlock.keygen.v1");
    assert_eq!(keygen_report["report"]["key_id"].as_str().unwrap().len(), 16, "one key-id form: {keygen_report}");
    run(&["keygen", "--openpgp", "--out", path(&d("site"))], 0);
    let (bob, bob_pub) = keygen(dir.path(), "bob");
    let (key, public) = (d("alice.key"), d("alice.pub"));
    let input = d("in");
    sample_tree(&input);
    let (b1, b2, mirror) = (d("b1.airlock"), d("b2.airlock"), d("mirror"));
    let export = run(&["export", "--files", path(&input), "--key", path(&key), "--out", path(&b1)], 0);
    assert_eq!(export["schema"], "airlock.export.v1");
    fs::write(input.join("new.txt"), b"new").unwrap();
    run(&["export", "--files", path(&input), "--key", path(&key), "--out", path(&b2)], 0);

    let verify = run(&["verify", path(&b1), "--trust", path(&public)], 0);
    let entry = &verify["report"]["packages"][0];
    assert_eq!(
        entry["layers"],
        json!({"transfer": "ok", "content": "ok", "digest": "absent", "provenance": "absent", "policy": "not-required"})
    );
    let import = run(&["import", path(&b1), "--trust", path(&public), "--mirror", path(&mirror)], 0);
    assert_eq!(import["report"]["outcome"], "published");
    run(&["import", "--mirror", path(&mirror), "--base-url", "http://mirror.example/"], 0);
    run(&["inspect", path(&b1)], 0);
    let status = run(&["status", "--mirror", path(&mirror)], 0);
    assert_eq!(status["report"]["contents"]["files"]["entries"], 4, "{status}");
    let diff = run(&["diff", path(&b1), path(&b2)], 0);
    assert_eq!(diff["report"]["changes"][0]["change"], "added");
    run(&["gc", "--mirror", path(&mirror)], 0);
    let sign = run(&["sign", path(&b1), "--key", path(&bob), "--trust", path(&public)], 0);
    assert_eq!(sign["report"]["added_signer"].as_str().unwrap().len(), 16, "{sign}");
    let demo = run(&["demo", "--dir", path(&d("demo"))], 0);
    assert_eq!(demo["schema"], "airlock.demo.v1");

    // Failures: a rejection, a usage error clap finds, one airlock finds, an I/O failure.
    let stranger = run(&["verify", path(&b1), "--trust", path(&d("site.pub.asc"))], 2);
    assert_eq!(stranger["kind"], "usage");
    let below = run(&["verify", path(&b2), "--trust", path(&bob_pub)], 1);
    assert_eq!((&below["kind"], &below["exit_code"]), (&json!("below-threshold"), &json!(1)));
    let clap = run(&["verify", "--no-such-flag"], 2);
    assert!(clap["error"].as_str().unwrap().contains("--no-such-flag"), "{clap}");
    let missing = run(&["status", "--mirror", path(&d("nope"))], 2);
    assert!(missing["error"].as_str().unwrap().contains("no such folder"), "{missing}");
}

#[test]
fn json_lines_puts_each_entry_on_a_line_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "op");
    let input = dir.path().join("in");
    sample_tree(&input);
    let bundle = dir.path().join("b.airlock");
    common::export(&input, &[&key], &bundle);
    let out = airlock().args(["verify", "--json-lines"]).arg(&bundle).arg("--trust").arg(&public).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<Value> = text.lines().map(|l| json_report(l.as_bytes())).collect();
    assert_eq!(lines.len(), 5, "four entries and the report: {text}");
    assert!(lines[..4].iter().all(|l| l["schema"] == "airlock.entry.v1" && l["report"]["layers"]["content"] == "ok"));
    assert_eq!(lines[4]["schema"], "airlock.verify.v1");
    assert_eq!((&lines[4]["report"]["entries"], &lines[4]["report"]["packages"]), (&json!(4), &json!([])));
    // Errors too are one line, usage errors included.
    let out = airlock().args(["verify", "--json-lines", "--nope"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert_eq!(json_report(text.as_bytes())["kind"], "usage");
}

#[test]
fn the_serve_report_is_in_its_schema() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "op");
    let input = dir.path().join("in");
    sample_tree(&input);
    let bundle = dir.path().join("b.airlock");
    common::export(&input, &[&key], &bundle);
    let mirror = dir.path().join("mirror");
    airlock().arg("import").arg(&bundle).arg("--trust").arg(&public).arg("--mirror").arg(&mirror).assert().success();
    let mut child = Process::new(assert_cmd::cargo::cargo_bin("airlock"))
        .args(["serve", "--json", "--listen", "127.0.0.1:0", "--mirror"])
        .arg(&mirror)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The report is printed once the server listens, then request lines follow.
    let mut text = String::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let report = loop {
        let line = lines.next().expect("serve printed its report").unwrap();
        text.push_str(&line);
        text.push('\n');
        if line == "}" {
            break json_report(text.as_bytes());
        }
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(report["schema"], "airlock.serve.v1");
    assert!(report["report"]["pypi"].as_str().unwrap().starts_with("http://127.0.0.1:"), "{report}");
}

/// The names `out.report("NAME", …)` prints under, read from the source.
fn reported_names() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut folders = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cli")];
    let mut files = Vec::new();
    while let Some(folder) = folders.pop() {
        for entry in fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() { folders.push(path) } else { files.push(path) }
        }
    }
    for file in files {
        let text = fs::read_to_string(file).unwrap();
        let calls = text.split("out.report(").skip(1).chain(text.split("out.report_entries(").skip(1));
        for part in calls {
            let name = part.trim_start().strip_prefix('"').expect("out.report takes its schema name first");
            names.insert(name.split('"').next().unwrap().to_owned());
        }
    }
    names
}

#[test]
fn the_schema_names_every_report_the_code_prints_and_no_other() {
    let schema = schema();
    let listed: BTreeSet<String> = schema["properties"]["schema"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().strip_prefix("airlock.").unwrap().strip_suffix(".v1").unwrap().to_owned())
        .filter(|name| name != "error" && name != "entry")
        .collect();
    assert_eq!(listed, reported_names());
}

#[test]
fn error_kinds_are_one_closed_set_in_the_code_the_schema_and_the_readme() {
    let code: BTreeSet<&str> = airlock::error::ERROR_KINDS.into_iter().collect();
    let schema = schema();
    let in_schema: BTreeSet<&str> = schema["$defs"]["error"]["properties"]["kind"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(in_schema, code);
    let readme = repo("README.md");
    let table = readme.split("| kind | exit | meaning |").nth(1).expect("the README's table of error kinds");
    let in_readme: BTreeSet<&str> =
        table.lines().skip(2).take_while(|l| l.starts_with('|')).map(|l| l.split('`').nth(1).unwrap()).collect();
    assert_eq!(in_readme, code);
}

#[test]
fn a_report_off_its_schema_is_caught() {
    // The validator is not a formality: an unknown kind and a renamed field are refused.
    let validator = jsonschema::validator_for(&schema()).unwrap();
    let good = json!({"schema": "airlock.error.v1", "ok": false, "exit_code": 2, "kind": "usage", "error": "x"});
    assert!(validator.is_valid(&good));
    let mut unknown_kind = good.clone();
    unknown_kind["kind"] = json!("oops");
    assert!(!validator.is_valid(&unknown_kind));
    let gc = json!({"schema": "airlock.gc.v1", "ok": true, "report": {"mirror": "m", "objects_removed": 0,
        "bytes_freed": 0, "segments_removed": 0, "segment_bytes_freed": 0, "foreign_objects_kept": 0, "staging_removed": [], "staging_kept": [], "dry_run": false}});
    assert!(validator.is_valid(&gc));
    let mut renamed = gc.clone();
    renamed["report"]["freed"] = renamed["report"]["bytes_freed"].take();
    renamed["report"].as_object_mut().unwrap().remove("bytes_freed");
    assert!(!validator.is_valid(&renamed));
}
