//! The code's shape, as ARCHITECTURE.md states it, checked on the source:
//!
//! - no import cycle between the top-level modules of src/ (module A depends
//!   on module B when A's code, comments aside, names `crate::B`);
//! - each ecosystem folder under src/ecosystem/ is named in code (comments
//!   aside, string literals included) by at most four files outside it: the
//!   registry of ecosystems and the few places that must list them. Unit
//!   tests (`#[cfg(test)]` items) are left out: a test of a shared layer
//!   may use real ecosystem names as its data;
//! - the layers ARCHITECTURE.md puts below the ecosystems name none of them.
//!
//! A failure names the cycle or the files, so the fix is to move the code
//! that knows the ecosystem into its folder, behind the traits of
//! src/ecosystem/mod.rs.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The most files outside an ecosystem's folder that may name it.
const MAX_LISTING_FILES: usize = 4;

/// The layers of ARCHITECTURE.md, bottom up: a module may depend on its own
/// layer and those below, never above.
const LAYERS: &[&[&str]] = &[
    &["error", "id", "escape", "progress", "time", "durable", "sort"],
    &["manifest", "bundle", "sign", "provenance", "lockfile", "fetch", "http"],
    &["mirror"],
    &["policy"],
    &["ecosystem"],
    &["verify", "import", "export", "inspect", "serve", "sbom", "cosign", "trust", "config", "audit"],
    &["cli"],
];

/// The layer of the ecosystems; those below it name none of them.
const ECOSYSTEM_LAYER: usize = 4;

/// The operations that drive every ecosystem through the registry
/// (`ecosystem::ALL`, `by_name`) and name none of them.
const THROUGH_THE_REGISTRY: &[&str] =
    &["export", "import", "inspect", "sbom", "serve", "verify", "cosign", "trust", "audit"];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Source text with comments blanked; with `strings` false, string and
/// character literals blanked too. A small lexer: enough for this tree
/// (line and nested block comments, escapes, raw strings, lifetimes).
fn strip(text: &str, strings: bool) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    // Inside a `#[cfg(test)]` item: the brace depth, and whether its body opened.
    let mut test_item: Option<(usize, bool)> = None;
    while i < b.len() {
        let rest = &b[i..];
        if test_item.is_none() && rest.starts_with(b"#[cfg(test)]") {
            test_item = Some((0, false));
            i += "#[cfg(test)]".len();
            continue;
        }
        if let Some((depth, opened)) = test_item {
            // Skip the item, lexing literals and comments so their braces do not count.
            if let Some(end) = literal_end(b, i) {
                i = end;
                continue;
            }
            test_item = match b[i] {
                b'{' => Some((depth + 1, true)),
                b'}' if depth == 1 => None,
                b'}' => Some((depth - 1, opened)),
                b';' if !opened => None,
                _ => test_item,
            };
            i += 1;
            continue;
        }
        if rest.starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if rest.starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if let Some(end) = literal_end(b, i) {
            if strings {
                out.push_str(&text[i..end]);
            } else {
                out.push_str("\"\"");
            }
            i = end;
        } else {
            let len = text[i..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&text[i..i + len]);
            i += len;
        }
    }
    out
}

/// Where the string, raw string or character literal starting at `i` ends.
fn literal_end(b: &[u8], i: usize) -> Option<usize> {
    let ident_before = i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
    match b[i] {
        b'"' => {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            Some((j + 1).min(b.len()))
        }
        b'r' if !ident_before && matches!(b.get(i + 1), Some(b'"' | b'#')) => {
            let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
            if b.get(i + 1 + hashes) != Some(&b'"') {
                return None;
            }
            let close: Vec<u8> = std::iter::once(b'"').chain(std::iter::repeat_n(b'#', hashes)).collect();
            let start = i + 2 + hashes;
            let end = b[start..].windows(close.len()).position(|w| w == close.as_slice())?;
            Some(start + end + close.len())
        }
        b'\'' => {
            // 'x' or '\n' is a character; 'a (no closing quote after one char) a lifetime.
            if b.get(i + 1) == Some(&b'\\') {
                let close = b[i + 2..].iter().position(|&c| c == b'\'')?;
                Some(i + 3 + close)
            } else {
                let len = std::str::from_utf8(&b[i + 1..(i + 5).min(b.len())])
                    .ok()
                    .or_else(|| std::str::from_utf8(&b[i + 1..(i + 4).min(b.len())]).ok())
                    .and_then(|s| s.chars().next())
                    .map_or(1, char::len_utf8);
                (b.get(i + 1 + len) == Some(&b'\'')).then_some(i + 2 + len)
            }
        }
        _ => None,
    }
}

/// The top-level module a file belongs to (`None` for lib.rs and main.rs).
fn module_of(file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src()).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?;
    if rel.components().count() == 1 {
        let name = first.strip_suffix(".rs")?;
        return (name != "lib" && name != "main").then(|| name.to_owned());
    }
    Some(first.to_owned())
}

/// Every `crate::NAME` and `crate::{NAME, ...}` in `code`.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        if at > 0 && code.as_bytes()[at - 1].is_ascii_alphanumeric() {
            continue;
        }
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut current = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.extend(first_ident(&current));
                        current.clear();
                        continue;
                    }
                    _ => {}
                }
                current.push(c);
            }
            found.extend(first_ident(&current));
        } else {
            found.extend(first_ident(rest));
        }
    }
    found
}

fn first_ident(text: &str) -> Option<String> {
    let ident: String = text.trim_start().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    (!ident.is_empty()).then_some(ident)
}

struct Tree {
    /// (file, its code without comments, without comments and literals).
    files: Vec<(PathBuf, String, String)>,
}

impl Tree {
    fn read() -> Self {
        let mut paths = Vec::new();
        rust_files(&src(), &mut paths);
        paths.sort();
        let files = paths
            .into_iter()
            .map(|p| {
                let text = fs::read_to_string(&p).unwrap();
                let (code, bare) = (strip(&text, true), strip(&text, false));
                (p, code, bare)
            })
            .collect();
        Tree { files }
    }

    fn modules(&self) -> BTreeSet<String> {
        self.files.iter().filter_map(|(p, _, _)| module_of(p)).collect()
    }

    fn dependencies(&self) -> BTreeMap<String, BTreeSet<String>> {
        let modules = self.modules();
        let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (path, _, bare) in &self.files {
            let Some(from) = module_of(path) else { continue };
            let to: Vec<String> = crate_paths(bare).into_iter().filter(|m| modules.contains(m) && *m != from).collect();
            deps.entry(from).or_default().extend(to);
        }
        deps
    }

    /// Files outside `folder` whose code names `word` (case-insensitive).
    /// Cargo's own build variables (`env!("CARGO_PKG_VERSION")`) are not the
    /// cargo ecosystem.
    fn naming(&self, word: &str, folder: &Path) -> Vec<String> {
        self.files
            .iter()
            .filter(|(p, _, _)| !p.starts_with(folder))
            .filter(|(_, code, _)| code.replace("CARGO_", "").to_ascii_lowercase().contains(word))
            .map(|(p, _, _)| p.strip_prefix(src()).unwrap().display().to_string())
            .collect()
    }
}

/// The ecosystem folders, with the word each is named by. The plain-files
/// ecosystem is left out: "files" is an ordinary word in every layer.
fn ecosystems() -> Vec<(String, PathBuf)> {
    let mut found: Vec<_> = fs::read_dir(src().join("ecosystem"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .map(|p| (p.file_name().unwrap().to_str().unwrap().to_owned(), p))
        .filter(|(name, _)| name != "files")
        .collect();
    found.sort();
    found
}

/// A cycle in `deps`, as the modules along it, if there is one.
fn find_cycle(deps: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit<'a>(
        node: &'a str,
        deps: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| *n == node) {
            let mut cycle: Vec<String> = path[at..].iter().map(|s| (*s).to_owned()).collect();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if !done.insert(node) {
            return None;
        }
        path.push(node);
        for next in deps.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, deps, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    deps.keys().find_map(|start| visit(start, deps, &mut Vec::new(), &mut done))
}

#[test]
fn top_level_modules_form_no_cycle() {
    let deps = Tree::read().dependencies();
    if let Some(cycle) = find_cycle(&deps) {
        panic!("import cycle between top-level modules: {}", cycle.join(" -> "));
    }
}

#[test]
fn each_ecosystem_is_named_by_at_most_four_files_outside_its_folder() {
    let tree = Tree::read();
    let ecosystems = ecosystems();
    assert!(ecosystems.len() >= 3, "expected the ecosystem folders under src/ecosystem/, found {ecosystems:?}");
    for (name, folder) in ecosystems {
        let files = tree.naming(&name, &folder);
        assert!(
            files.len() <= MAX_LISTING_FILES,
            "{name} is named by {} files outside src/ecosystem/{name}/ (at most {MAX_LISTING_FILES}): {}",
            files.len(),
            files.join(", ")
        );
    }
}

#[test]
fn the_shared_layers_name_no_ecosystem() {
    let tree = Tree::read();
    for (name, folder) in ecosystems() {
        let below = LAYERS[..ECOSYSTEM_LAYER].iter().flat_map(|layer| layer.iter());
        let shared: Vec<&str> = below.chain(THROUGH_THE_REGISTRY).copied().collect();
        let in_layer = |f: &String| shared.iter().any(|m| *f == format!("{m}.rs") || f.starts_with(&format!("{m}/")));
        let named: Vec<String> = tree.naming(&name, &folder).into_iter().filter(in_layer).collect();
        assert!(named.is_empty(), "{name} is named in a shared layer: {}", named.join(", "));
    }
}

#[test]
fn every_module_depends_only_on_its_layer_or_below() {
    let tree = Tree::read();
    for module in tree.modules() {
        assert!(
            layer_of(&module).is_some(),
            "src/{module} is in no layer: add it to ARCHITECTURE.md's layer table and to LAYERS in this test"
        );
    }
    for (from, tos) in tree.dependencies() {
        let own = layer_of(&from).unwrap();
        for to in tos {
            let theirs = layer_of(&to).unwrap();
            assert!(
                theirs <= own,
                "src/{from} (layer {own}) depends on crate::{to} (layer {theirs}, above it); see ARCHITECTURE.md"
            );
        }
    }
}

/// The checker itself: a cycle is found, comments do not count, strings do.
#[test]
fn the_checks_see_what_they_should() {
    let deps: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
        ("b".to_owned(), BTreeSet::from(["c".to_owned()])),
        ("c".to_owned(), BTreeSet::from(["a".to_owned()])),
    ]
    .into();
    assert_eq!(find_cycle(&deps).unwrap(), ["a", "b", "c", "a"]);
    let code =
        "// crate::x\nuse crate::{y::Z, w};\nlet s = \"npm\"; /* npm */ let c = 'a'; fn f<'a>() {} r#\"crate::q\"#";
    assert_eq!(crate_paths(&strip(code, false)), BTreeSet::from(["w".to_owned(), "y".to_owned()]));
    assert!(strip(code, true).contains("\"npm\""));
    assert_eq!(strip(code, true).matches("npm").count(), 1);
    let tests = "fn a() {}\n#[cfg(test)]\nmod tests { fn b() { let s = \"}npm\"; } }\nfn c() {}\n#[cfg(test)]\nuse x::npm;\nfn d() {}";
    let kept = strip(tests, true);
    assert!(
        !kept.contains("npm") && kept.contains("fn a()") && kept.contains("fn c()") && kept.contains("fn d()"),
        "{kept}"
    );
}
