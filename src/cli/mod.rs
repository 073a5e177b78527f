//! The command line: one module per subcommand (`XArgs` with `run`), the
//! output conventions shared by all of them, and indicatif progress.
//!
//! Exit codes: 0 success, 1 rejected by verification or policy, 2 usage or
//! configuration error, 3 the machine failed (disk full, permissions), 4 a
//! split bundle needs more volumes, 5 the mirror is busy.

// Doc comments on the argument structs are the --help and man page text, written for
// operators, not rustdoc: no Markdown backticks there.
#![allow(clippy::doc_markdown)]

mod completions;
mod demo;
mod diff;
mod export;
mod gc;
mod import;
mod inspect;
mod keygen;
mod keys;
mod policy;
mod push;
mod serve;
mod sign;
mod status;
mod verify;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::error::{EntryReports, Error, Result};
use crate::policy::Policy;
use crate::progress::Progress;
use crate::sign::PublicKey;
use crate::verify::ListsEntries;

/// The bundle format as a literal for `concat!`; a unit test checks it equals
/// [`crate::manifest::FORMAT_SEGMENTED`], the format export writes.
macro_rules! bundle_format {
    () => {
        "2"
    };
}

/// What `--version` prints after the name: the release and the bundle
/// format it writes and reads, so two sites can tell whether their bundles
/// are compatible without reading a changelog.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (bundle format ", bundle_format!(), ")");

/// Carry software across an air gap without losing the reasons to trust it.
#[derive(Debug, Parser)]
#[command(
    name = "airlock",
    version = VERSION,
    about,
    long_about = None,
    propagate_version = true,
    max_term_width = 100,
    after_help = "Exit status: 0 success; 1 the bundle or an entry was rejected (signature, digest, schema, policy, expiry); \
                  2 usage or configuration error (bad flag, missing file, unreadable key or policy); \
                  3 the machine failed (disk full, permissions); \
                  4 a split bundle is incomplete (the volumes given were verified and kept; give the missing ones); \
                  5 the mirror is busy (another import or gc holds it; retry, or pass --wait)."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Debug, Clone, Args)]
// Independent switches, as clap parses them.
#[allow(clippy::struct_excessive_bools)]
pub struct GlobalArgs {
    /// Print nothing but errors; no progress bars
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Print a machine-readable JSON report on standard output (errors too)
    #[arg(long, global = true)]
    pub json: bool,
    /// Like --json, one JSON object a line: each entry of verify and import its own line first
    #[arg(long, global = true, conflicts_with = "json")]
    pub json_lines: bool,
    /// Print more: verify and import list every entry with its five layers
    #[arg(long, short, global = true)]
    pub verbose: bool,
}

#[derive(Debug, Subcommand)]
// Parsed once per run; boxing the larger argument structs buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    Keygen(keygen::KeygenArgs),
    Export(export::ExportArgs),
    Verify(verify::VerifyArgs),
    Import(import::ImportArgs),
    Inspect(inspect::InspectArgs),
    Demo(demo::DemoArgs),
    Sign(sign::SignArgs),
    Status(status::StatusArgs),
    Diff(diff::DiffArgs),
    Gc(gc::GcArgs),
    Policy(policy::PolicyArgs),
    Serve(serve::ServeArgs),
    Push(push::PushArgs),
    Completions(completions::CompletionsArgs),
}

/// The clap definition, for man pages and completion.
#[must_use]
pub fn command() -> clap::Command {
    Cli::command()
}

/// The man pages: `airlock.1` and one `airlock-COMMAND.1` per subcommand
/// (`airlock-COMMAND-SUBCOMMAND.1` for nested ones),
/// rendered from the clap definitions (checked in under man/, kept up to
/// date by tests/man.rs).
#[must_use]
pub fn man_pages() -> Vec<(String, Vec<u8>)> {
    let mut root = command();
    // Building propagates the global flags (--quiet, --json) into every subcommand.
    root.build();
    let mut pages = vec![("airlock.1".to_owned(), render_man(root.clone()))];
    add_subcommand_pages(&root, "airlock", &mut pages);
    pages
}

/// One page per subcommand, nested ones too (`airlock-policy-sign.1`).
fn add_subcommand_pages(parent: &clap::Command, prefix: &str, pages: &mut Vec<(String, Vec<u8>)>) {
    for sub in parent.get_subcommands() {
        let name = format!("{prefix}-{}", sub.get_name());
        let page = sub.clone().name(name.clone()).version(VERSION);
        pages.push((format!("{name}.1"), render_man(page)));
        // `help` mirrors the whole tree (`airlock help policy sign`); its page is enough.
        if sub.get_name() != "help" {
            add_subcommand_pages(sub, &name, pages);
        }
    }
}

fn render_man(command: clap::Command) -> Vec<u8> {
    let mut out = Vec::new();
    let synopsis = synopsis(&command);
    clap_mangen::Man::new(command).render(&mut out).expect("rendering to memory cannot fail");
    let page = String::from_utf8(out).expect("roff is text");
    // clap_mangen's SYNOPSIS drops flag values and repetition (`[--trust]`
    // for `[--trust PUB]...`); the page gets one written from the same definition.
    let mut lines: Vec<&str> = page.lines().collect();
    if let Some(at) = lines.iter().position(|l| *l == ".SH SYNOPSIS") {
        let end = lines[at + 1..].iter().position(|l| l.starts_with(".SH")).map_or(lines.len(), |n| at + 1 + n);
        lines.splice(at + 1..end, [synopsis.as_str()]);
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text.into_bytes()
}

/// `airlock verify [-q|--quiet] [--trust PUB]... <BUNDLE>...` in roff.
fn synopsis(command: &clap::Command) -> String {
    let roff = |text: &str| text.replace('\\', "\\\\").replace('-', "\\-");
    let bold = |text: &str| format!("\\fB{}\\fR", roff(text));
    let italic = |text: &str| format!("\\fI{}\\fR", roff(text));
    // The page of `airlock policy sign` is named airlock-policy-sign.
    let mut parts = vec![bold(&command.get_name().replace('-', " "))];
    for arg in command.get_arguments().filter(|a| !a.is_hide_set()) {
        let repeats = matches!(arg.get_action(), clap::ArgAction::Append | clap::ArgAction::Count);
        let value = arg
            .get_value_names()
            .map(|names| names.iter().map(|n| italic(n)).collect::<Vec<_>>().join(" "))
            .filter(|_| arg.get_action().takes_values());
        let text = if arg.is_positional() {
            let name = value.unwrap_or_else(|| italic(arg.get_id().as_str()));
            format!("<{name}>")
        } else {
            let mut forms: Vec<String> = Vec::new();
            if let Some(short) = arg.get_short() {
                forms.push(bold(&format!("-{short}")));
            }
            if let Some(long) = arg.get_long() {
                forms.push(bold(&format!("--{long}")));
            }
            let flag = forms.join("|");
            match value {
                Some(value) if arg.is_require_equals_set() => format!("{flag}[={value}]"),
                Some(value) => format!("{flag} {value}"),
                None => flag,
            }
        };
        let text = if arg.is_required_set() { text } else { format!("[{text}]") };
        parts.push(if repeats { format!("{text}...") } else { text });
    }
    if command.has_subcommands() {
        parts.push(format!("<{}>", italic("COMMAND")));
    }
    parts.join(" ")
}

/// Entry point of the binary.
#[must_use]
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    let out = Output::new(&cli.global);
    let result = match &cli.command {
        Command::Keygen(args) => args.run(&out),
        Command::Export(args) => args.run(&out),
        Command::Verify(args) => args.run(&out),
        Command::Import(args) => args.run(&out),
        Command::Inspect(args) => args.run(&out),
        Command::Demo(args) => args.run(&out),
        Command::Sign(args) => args.run(&out),
        Command::Status(args) => args.run(&out),
        Command::Diff(args) => args.run(&out),
        Command::Gc(args) => args.run(&out),
        Command::Policy(args) => args.run(&out),
        Command::Serve(args) => args.run(&out),
        Command::Push(args) => args.run(&out),
        Command::Completions(args) => {
            args.run();
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            out.error(&e);
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
        }
    }
}

/// clap's own errors, cut to one line (help and version are not errors).
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    let rendered = e.render().to_string();
    // clap's message runs until its usage block; fold it into one line.
    let message: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.is_empty())
        .collect();
    let message = message.join(" ");
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    let subcommand = std::env::args().skip(1).find(|a| command().get_subcommands().any(|s| s.get_name() == a));
    let help = subcommand.map_or_else(|| "airlock --help".to_owned(), |s| format!("airlock {s} --help"));
    let message = format!("{message}; see `{help}`");
    if let Some(lines) = json_requested() {
        print_json_error(2, "usage", &message, None, None, lines);
    }
    eprintln!("error: {message}");
    ExitCode::from(2)
}

/// Where a command's results and messages go.
pub struct Output {
    quiet: bool,
    /// `--json` (`Some(false)`) or `--json-lines` (`Some(true)`: compact
    /// documents, entries on lines of their own).
    json: Option<bool>,
    verbose: bool,
}

impl Output {
    fn new(global: &GlobalArgs) -> Self {
        Output {
            quiet: global.quiet,
            json: (global.json || global.json_lines).then_some(global.json_lines),
            verbose: global.verbose,
        }
    }

    /// A line of the human report (not in `--json` or `--quiet` mode).
    pub fn line(&self, text: impl AsRef<str>) {
        if !self.quiet && self.json.is_none() {
            // Names from a bundle are in these lines: no control character reaches the terminal.
            print_stdout(&format!("{}\n", crate::escape::one_line(text.as_ref())));
        }
    }

    /// A line of the human report shown only with `--verbose`.
    pub fn detail(&self, text: impl AsRef<str>) {
        if self.verbose {
            self.line(text);
        }
    }

    /// A warning on standard error (not with `--quiet`): something done that the operator should change.
    pub fn warn(&self, text: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("warning: {}", crate::escape::one_line(text.as_ref()));
        }
    }

    /// The JSON report (in `--json` mode only), in the envelope
    /// `schemas/reports.schema.json` describes.
    pub fn report<T: Serialize>(&self, schema: &str, report: &T) {
        if let Some(lines) = self.json {
            print_report(schema, report, lines);
        }
    }

    /// [`Output::report`] of a report that lists every entry: with
    /// `--json-lines` each entry on a line of its own (`airlock.entry.v1`)
    /// first, then the report listing none. Either way written as it is
    /// encoded: a report of 100 000 entries held as a JSON tree took
    /// 200 MiB.
    pub fn report_entries<T: ListsEntries>(&self, schema: &str, report: &T) {
        match self.json {
            None => {}
            Some(false) => print_report(schema, report, false),
            Some(true) => {
                with_stdout(|out| report.entries().iter().try_for_each(|entry| write_entry_line(out, &entry)));
                print_report(schema, &report.unlisted(), true);
            }
        }
    }

    fn error(&self, e: &Error) {
        if let Some(lines) = self.json {
            let missing = match e {
                Error::Incomplete { missing, .. } => Some(missing.as_slice()),
                _ => None,
            };
            print_json_error(e.exit_code(), e.kind(), &e.to_string(), missing, e.packages(), lines);
        } else if let Some(packages) = e.packages() {
            self.refused_entries(packages);
        }
        // One line whatever the error quotes from a bundle or a file, and nothing that drives the terminal.
        eprintln!("error: {}", crate::escape::one_line(&e.to_string()));
    }

    /// The entries of a refused bundle: each refused one (every one with
    /// `--verbose`), with the layer that refused it.
    fn refused_entries(&self, packages: &dyn EntryReports) {
        let _ = packages.each(&mut |p| {
            let text = |key: &str| p[key].as_str().unwrap_or_default().to_owned();
            let failed: Vec<&str> = ["digest", "provenance", "policy"]
                .into_iter()
                .filter(|layer| p["layers"][*layer] == "failed")
                .collect();
            let version = p["version"].as_str().map(|v| format!(" {v}")).unwrap_or_default();
            let what = format!("{} {}{version}", text("ecosystem"), text("name"));
            match failed.first() {
                Some(layer) => self.line(format!("refused   {what}: {layer}: {}", text(layer))),
                None => self.detail(format!("passed    {what}")),
            }
            Ok(())
        });
    }

    /// Progress bars on a terminal, nothing otherwise.
    #[must_use]
    pub fn progress(&self) -> Bars {
        let visible = !self.quiet && self.json.is_none() && std::io::stderr().is_terminal();
        Bars { visible, bar: Mutex::new(None) }
    }
}

/// The versioned name of a JSON document: `airlock.verify.v1`. A field may
/// be added within a version; one renamed, removed or retyped makes a new one.
fn schema_id(schema: &str) -> String {
    format!("airlock.{schema}.v1")
}

/// The failure envelope (`airlock.error.v1` in `schemas/reports.schema.json`) on standard
/// output; `missing` names the volumes an incomplete split bundle still needs.
/// With `lines` the entries of a refused bundle come first, one a line.
fn print_json_error(
    exit_code: i32,
    kind: &str,
    message: &str,
    missing: Option<&[String]>,
    packages: Option<&dyn EntryReports>,
    lines: bool,
) {
    let listed = if lines { None } else { packages };
    let document = ErrorDocument {
        schema: schema_id("error"),
        ok: false,
        exit_code,
        kind,
        error: message,
        missing_volumes: missing,
        packages: packages.map(|_| Streamed(listed)),
    };
    with_stdout(|out| {
        if !lines {
            serde_json::to_writer_pretty(&mut *out, &document)?;
            return out.write_all(b"\n");
        }
        if let Some(packages) = packages {
            packages.each(&mut |entry| write_entry_line(out, &entry))?;
        }
        serde_json::to_writer(&mut *out, &document)?;
        out.write_all(b"\n")
    });
}

/// One entry's report on a line of its own (`airlock.entry.v1`).
fn write_entry_line(out: &mut dyn Write, entry: &impl Serialize) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, &Document { schema: schema_id("entry"), ok: true, report: entry })?;
    out.write_all(b"\n")
}

/// `airlock.error.v1`.
#[derive(Serialize)]
struct ErrorDocument<'a> {
    schema: String,
    ok: bool,
    exit_code: i32,
    kind: &'a str,
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    missing_volumes: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    packages: Option<Streamed<'a>>,
}

/// A refused bundle's entries as a JSON array, encoded as it is written
/// (`None`: written apart, one a line, so the array is empty).
struct Streamed<'a>(Option<&'a dyn EntryReports>);

impl Serialize for Streamed<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq as _;
        let mut seq = serializer.serialize_seq(None)?;
        let mut failed = None;
        if let Some(reports) = self.0 {
            let _ = reports.each(&mut |entry| {
                seq.serialize_element(&entry).map_err(|e| {
                    failed = Some(e);
                    std::io::Error::other("stopped")
                })
            });
        }
        match failed {
            Some(e) => Err(e),
            None => seq.end(),
        }
    }
}

/// The envelope of a successful command's JSON report.
#[derive(Serialize)]
struct Document<'a, T: Serialize> {
    schema: String,
    ok: bool,
    report: &'a T,
}

/// A report on standard output, encoded as it is written: pretty, or with
/// `lines` on one line.
fn print_report<T: Serialize>(schema: &str, report: &T, lines: bool) {
    let document = Document { schema: schema_id(schema), ok: true, report };
    with_stdout(|out| {
        if lines {
            serde_json::to_writer(&mut *out, &document)?;
        } else {
            serde_json::to_writer_pretty(&mut *out, &document)?;
        }
        out.write_all(b"\n")
    });
}

/// Runs `write` on buffered standard output and flushes it. When standard
/// output is closed the process ends, status 0: a closed pipe (`airlock
/// verify --json | head`) is not an error worth a panic.
fn with_stdout(write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) {
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    if write(&mut out).and_then(|()| out.flush()).is_err() {
        std::process::exit(0);
    }
}

/// Whether `--json` (`Some(false)`) or `--json-lines` (`Some(true)`) was on
/// the command line, for errors clap found before the flags could be parsed
/// (everything after `--` is an operand).
fn json_requested() -> Option<bool> {
    let flags: Vec<String> = std::env::args().skip(1).take_while(|a| a != "--").collect();
    if flags.iter().any(|a| a == "--json-lines") {
        Some(true)
    } else {
        flags.iter().any(|a| a == "--json").then_some(false)
    }
}

/// A closed pipe (`airlock inspect | head`) is not an error worth a panic.
fn print_stdout(text: &str) {
    let mut stdout = std::io::stdout().lock();
    if stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()).is_err() {
        std::process::exit(0);
    }
}

/// indicatif progress bars.
pub struct Bars {
    visible: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl Progress for Bars {
    fn start(&self, phase: &str, total: u64) {
        if !self.visible {
            return;
        }
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template("{msg:>10} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_message(phase.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        *self.bar.lock().expect("progress lock") = Some(bar);
    }

    fn advance(&self, bytes: u64) {
        if let Some(bar) = self.bar.lock().expect("progress lock").as_ref() {
            bar.inc(bytes);
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.bar.lock().expect("progress lock").take() {
            bar.finish_and_clear();
        }
    }
}

/// How the importing side says whom it trusts: `--trust` keys or a `--policy` file.
///
/// In that order: `--trust`, then `--policy` (or `AIRLOCK_POLICY`), then
/// [`DEFAULT_POLICY`] if it exists. clap's `conflicts_with` is not used
/// between them: it counts a value from the environment as given, so a site
/// that sets `AIRLOCK_POLICY` could never pass `--trust` for a one-off check.
#[derive(Debug, Clone, Args)]
pub struct TrustArgs {
    /// A trusted exporter's public key (PREFIX.pub); repeat for several. Without it: --policy, AIRLOCK_POLICY, or /etc/airlock/policy.toml if it exists
    #[arg(long, value_name = "PUB")]
    pub trust: Vec<PathBuf>,
    /// How many distinct --trust keys must have signed
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub threshold: usize,
    /// A TOML policy naming trusted keys and a threshold (schemas/policy.cddl); default /etc/airlock/policy.toml if it exists
    #[arg(long, value_name = "FILE", env = POLICY_ENV, hide_env_values = true)]
    pub policy: Option<PathBuf>,
}

/// Where the manifest segments an incremental bundle leaves out are read
/// (`verify`, `inspect`, `diff`, `sign`; `import` reads its own mirror's).
#[derive(Debug, Clone, Args)]
pub struct HeldArgs {
    /// The mirror that imported the channel's earlier bundles (a folder, or s3://BUCKET/PREFIX): an incremental bundle's manifest segments that it leaves out are read from there (read only)
    #[arg(long, value_name = "MIRROR")]
    pub mirror: Option<PathBuf>,
    /// On the exporting side: the exporter's --state folder, which keeps the segments of each channel's last bundle, instead of --mirror
    #[arg(long, value_name = "DIR", conflicts_with = "mirror")]
    pub state: Option<PathBuf>,
}

impl HeldArgs {
    fn source(&self) -> Result<std::sync::Arc<dyn crate::manifest::segments::SegmentSource>> {
        if let Some(dir) = &self.state {
            if !dir.is_dir() {
                return Err(Error::Usage(format!(
                    "{}: is not a folder; --state takes the folder `airlock export --state` keeps",
                    dir.display()
                )));
            }
            return Ok(std::sync::Arc::new(crate::export::state_segments(dir)));
        }
        match &self.mirror {
            Some(mirror) => {
                if !crate::mirror::is_bucket(mirror) && !mirror.join(".airlock").is_dir() {
                    return Err(Error::Usage(format!(
                        "{}: is not an airlock mirror; --mirror takes the folder `airlock import --mirror` fills",
                        mirror.display()
                    )));
                }
                crate::mirror::held_segments(mirror)
            }
            None => Ok(std::sync::Arc::new(crate::manifest::segments::NoSegments)),
        }
    }
}

/// The environment variable `--policy` reads.
const POLICY_ENV: &str = "AIRLOCK_POLICY";

/// The policy used when no flag or variable names one and the file exists.
pub const DEFAULT_POLICY: &str = "/etc/airlock/policy.toml";

/// Whom a command trusts, once the flags, the environment and the default are weighed.
#[derive(Debug, PartialEq, Eq)]
enum TrustSource<'a> {
    Keys(&'a [PathBuf]),
    PolicyFile(PathBuf),
}

impl TrustArgs {
    /// `command` names the subcommand whose --help the usage errors point to.
    fn load(&self, command: &str) -> Result<Policy> {
        let from_env = std::env::var_os(POLICY_ENV).map(PathBuf::from);
        let source = self.source(from_env.as_deref(), Path::new(DEFAULT_POLICY)).map_err(|e| match e {
            Error::Usage(message) => Error::Usage(format!("{message}; see `airlock {command} --help`")),
            other => other,
        })?;
        match source {
            TrustSource::PolicyFile(path) => crate::trust::load_policy(&path),
            TrustSource::Keys(paths) => {
                let keys = paths.iter().map(|p| PublicKey::load(p)).collect::<Result<Vec<_>>>()?;
                Policy::from_keys(keys, self.threshold)
            }
        }
    }

    /// `from_env` is the value of `AIRLOCK_POLICY`: a `--policy` equal to it
    /// came from the environment (or says the same), and `--trust` overrides it.
    fn source(&self, from_env: Option<&Path>, default: &Path) -> Result<TrustSource<'_>> {
        let policy_flag = self.policy.as_deref().filter(|p| Some(*p) != from_env);
        match (self.trust.is_empty(), policy_flag, &self.policy) {
            (false, Some(_), _) => Err(Error::Usage("pass either --trust or --policy, not both".into())),
            (false, None, _) => Ok(TrustSource::Keys(&self.trust)),
            (true, _, _) if self.threshold != 1 => {
                Err(Error::Usage("--threshold counts --trust keys; a policy file sets its own threshold".into()))
            }
            (true, _, Some(path)) => Ok(TrustSource::PolicyFile(path.clone())),
            (true, _, None) if default.exists() => Ok(TrustSource::PolicyFile(default.to_path_buf())),
            (true, _, None) => Err(Error::Usage(format!(
                "say whom to trust: pass --trust PUB or --policy FILE, set {POLICY_ENV}, or install {}",
                default.display()
            ))),
        }
    }
}

/// A count with its thousands apart, as people read them: `3 303`.
fn count(n: usize) -> String {
    let digits = n.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(' ');
        }
        grouped.push(c);
    }
    grouped
}

/// `1 entry`, `2 entries`: `noun` and `plural` as the count asks.
fn counted(n: usize, noun: &str, plural: &str) -> String {
    format!("{} {}", count(n), if n == 1 { noun } else { plural })
}

/// `--wait[=SECONDS]`: how long a command waits for a mirror another
/// airlock holds. Without a value, as long as it takes.
#[derive(Debug, Clone, Args)]
pub struct WaitArgs {
    /// Wait for the mirror lock another import or gc holds (--wait=SECONDS at most; --wait, or 0, as long as it takes) instead of exiting 5
    #[arg(long, value_name = "SECONDS", num_args = 0..=1, default_missing_value = "0", require_equals = true)]
    pub wait: Option<u64>,
}

impl WaitArgs {
    /// Runs `operation`, again every half second while the mirror is busy
    /// and the wait allows, saying once that it waits.
    fn retrying<T>(&self, out: &Output, mut operation: impl FnMut() -> Result<T>) -> Result<T> {
        let Some(seconds) = self.wait else { return operation() };
        let deadline = (seconds > 0).then(|| std::time::Instant::now() + Duration::from_secs(seconds));
        let mut said = false;
        loop {
            match operation() {
                Err(Error::Busy(why)) if deadline.is_none_or(|d| std::time::Instant::now() < d) => {
                    if !said {
                        out.warn(format!("waiting for the mirror lock: {why}"));
                        said = true;
                    }
                    std::thread::sleep(Duration::from_millis(500));
                }
                other => return other,
            }
        }
    }
}

/// Human-readable byte counts.
fn bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::{TrustArgs, TrustSource};

    fn trust(keys: &[&str], policy: Option<&str>) -> TrustArgs {
        TrustArgs { trust: keys.iter().map(PathBuf::from).collect(), threshold: 1, policy: policy.map(PathBuf::from) }
    }

    const NO_DEFAULT: &str = "/nonexistent/airlock/policy.toml";

    #[test]
    fn trust_keys_override_the_policy_the_environment_names() {
        let args = trust(&["a.pub"], Some("/env/policy.toml"));
        let source = args.source(Some(Path::new("/env/policy.toml")), Path::new(NO_DEFAULT)).unwrap();
        assert_eq!(source, TrustSource::Keys(&args.trust));
    }

    #[test]
    fn trust_keys_and_a_policy_flag_conflict() {
        let args = trust(&["a.pub"], Some("p.toml"));
        let error = args.source(None, Path::new(NO_DEFAULT)).unwrap_err().to_string();
        assert!(error.contains("--trust or --policy"), "{error}");
    }

    #[test]
    fn the_default_policy_is_used_only_when_it_exists() {
        let dir = tempfile::tempdir().unwrap();
        let default = dir.path().join("policy.toml");
        let error = trust(&[], None).source(None, &default).unwrap_err().to_string();
        assert!(error.contains("--trust") && error.contains("--policy") && error.contains("AIRLOCK_POLICY"), "{error}");
        std::fs::write(&default, "").unwrap();
        assert_eq!(trust(&[], None).source(None, &default).unwrap(), TrustSource::PolicyFile(default.clone()));
    }

    #[test]
    fn a_threshold_without_trust_keys_is_refused() {
        let mut args = trust(&[], Some("p.toml"));
        args.threshold = 2;
        assert!(args.source(None, Path::new(NO_DEFAULT)).is_err());
    }

    #[test]
    fn version_names_the_bundle_format_the_code_uses() {
        let format = crate::manifest::FORMAT_SEGMENTED.to_string();
        assert_eq!(super::VERSION, format!("{} (bundle format {format})", env!("CARGO_PKG_VERSION")));
    }
}
