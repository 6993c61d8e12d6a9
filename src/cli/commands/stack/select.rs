//! `skyform stack select NAME`: the stack every command of this project works on, until
//! another is selected. Remembered in `.skyform/stack` (local data: each clone chooses its own;
//! `-s` and `SKYFORM_STACK` still win for one command).

use std::process::ExitCode;

use crate::cli::{Global, selection_file};
use crate::error::{Error, Result};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The stack (it must exist: `skyform stack init NAME` creates one).
    pub name: String,
}

pub fn run(g: &Global, args: Args) -> Result<ExitCode> {
    let project = g.project()?;
    let stacks = project.stacks()?;
    if !stacks.contains(&args.name) {
        return Err(Error::user(
            format!("this project has no stack `{}`", args.name),
            if stacks.is_empty() {
                format!("create it with `skyform stack init {}`", args.name)
            } else {
                format!(
                    "its stacks are {}; `skyform stack init {}` creates a new one",
                    stacks.join(", "),
                    args.name
                )
            },
        ));
    }
    let path = selection_file(&project);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    }
    // Written whole then renamed, so a reader never sees half a name.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{}\n", args.name))
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    println!(
        "selected stack `{}`: commands in this project now work on it (`-s STACK` overrides)",
        args.name
    );
    Ok(ExitCode::SUCCESS)
}
