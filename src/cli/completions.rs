//! `airlock completions`

use clap::Args;
use clap_complete::Shell;

use super::{command, print_stdout};

/// Print the shell completion script for bash, zsh, fish, elvish or powershell on standard output
///
/// For example: airlock completions bash > /etc/bash_completion.d/airlock;
/// airlock completions zsh > "${fpath[1]}/_airlock";
/// airlock completions fish > ~/.config/fish/completions/airlock.fish.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_name = "SHELL")]
    pub shell: Shell,
}

impl CompletionsArgs {
    /// It cannot fail. The script goes to standard output whatever --quiet or --json say: it is the command's product.
    pub fn run(&self) {
        let mut script = Vec::new();
        clap_complete::generate(self.shell, &mut command(), "airlock", &mut script);
        print_stdout(&String::from_utf8_lossy(&script));
    }
}
