//! The Hugging Face `airlock export` flags, merged with the `[huggingface]`
//! config section into the export's [`Repos`].

// Doc comments on the argument structs are the --help and man page text, written for
// operators, not rustdoc: no Markdown backticks there.
#![allow(clippy::doc_markdown)]

use clap::Args;

use super::config::HuggingfaceConfig;
use super::source::Repos;

/// The repository flags, with the other inputs.
#[derive(Debug, Args)]
#[group(skip)]
pub struct RepoArgs {
    /// Carry a Hugging Face model, ORG/NAME[@REVISION] (branch, tag or commit; default main), at the commit its revision names now; repeatable
    #[arg(long, value_name = "ORG/NAME[@REV]")]
    pub hf_model: Vec<String>,
    /// Carry a Hugging Face dataset, ORG/NAME[@REVISION]; repeatable
    #[arg(long, value_name = "ORG/NAME[@REV]")]
    pub hf_dataset: Vec<String>,
    /// Carry only the repositories' files matching GLOB (as huggingface_hub's allow_patterns); repeatable
    #[arg(long, value_name = "GLOB")]
    pub hf_include: Vec<String>,
    /// Leave out the repositories' files matching GLOB; repeatable
    #[arg(long, value_name = "GLOB")]
    pub hf_exclude: Vec<String>,
}

/// The export's Hugging Face part: the config's lists then the flags'.
#[must_use]
pub fn repos(args: &RepoArgs, config: &HuggingfaceConfig) -> Repos {
    let join = |a: &[String], b: &[String]| a.iter().chain(b).cloned().collect::<Vec<_>>();
    Repos {
        models: join(&config.models, &args.hf_model),
        datasets: join(&config.datasets, &args.hf_dataset),
        include: join(&config.include, &args.hf_include),
        exclude: join(&config.exclude, &args.hf_exclude),
        endpoint: config.endpoint.clone(),
    }
}
