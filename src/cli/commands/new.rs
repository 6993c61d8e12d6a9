//! `skyform new TEMPLATE DIR`: scaffold a project from a template.
//!
//! The templates live in `templates/` at the root of the repository and are embedded in the
//! binary with `include_str!`, so `skyform new` works from an installed binary with nothing
//! beside it. Each file is a handlebars template (see `templates/README.md` for the variables).
//! Everything is rendered in memory first and written only when all of it rendered, so a broken
//! template leaves no half-written project behind.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::json;

use crate::cli::Global;
use crate::error::{Error, Result};

/// Create a new project from a template: the program, its functions, a `dev` stack on the
/// local cloud and a `state/` folder. Without arguments, list the templates.
///
/// Templates: http-api, node-api, typescript-api, rust-api, queue-worker, cron-job,
/// upload-pipeline.
///
/// Example: `skyform new http-api shop && cd shop && skyform up`
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The template (`skyform new` alone lists them, one line each).
    #[arg(requires = "directory")]
    pub template: Option<String>,
    /// The folder to create; it must not exist or be empty. Its name is the project's name.
    // Not named `dir`: clap would merge it with the global `-C DIR`, whose id is `dir`.
    #[arg(value_name = "DIR")]
    pub directory: Option<PathBuf>,
    /// The project's name (default: DIR's name): letters, digits, `-` and `_`, starting with a
    /// letter.
    #[arg(long)]
    pub name: Option<String>,
    /// List the templates and exit.
    #[arg(long, conflicts_with_all = ["template", "directory", "name"])]
    pub list: bool,
}

/// A template: a name, what it makes, and its files.
struct Template {
    name: &'static str,
    about: &'static str,
    /// What to run after `cd DIR`, shown to the user once the project is written.
    next: &'static [&'static str],
    /// Its function is a cargo package in `functions/` (whose `target/` git should ignore).
    rust_function: bool,
    /// Its own files, written after [`COMMON_FILES`].
    files: &'static [File],
}

/// One file of a template: where it goes in the project, and its handlebars source.
struct File {
    path: &'static str,
    source: &'static str,
}

/// `file!("http-api", "src/main.rs")` embeds `templates/http-api/src/main.rs.hbs`, written to
/// `src/main.rs`.
macro_rules! file {
    ($folder:literal, $path:literal) => {
        File {
            path: $path,
            source: include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/templates/",
                $folder,
                "/",
                $path,
                ".hbs"
            )),
        }
    };
}

/// The files every project gets, whatever its template.
static COMMON_FILES: &[File] = &[
    file!("common", "Skyform.toml"),
    file!("common", "Skyform.dev.toml"),
    file!("common", ".gitignore"),
    file!("common", "state/.gitkeep"),
];

static TEMPLATES: &[Template] = &[
    Template {
        name: "http-api",
        about: "a Python function behind an HTTP API (GET /hello/{name})",
        next: &["skyform up", "curl \"$(skyform outputs url)/hello/ada\""],
        rust_function: false,
        files: &[
            file!("http-api", "Cargo.toml"),
            file!("http-api", "README.md"),
            file!("http-api", "src/main.rs"),
            file!("http-api", "functions/hello/app.py"),
        ],
    },
    Template {
        name: "node-api",
        about: "a Node.js function behind an HTTP API (GET /hello/{name}, POST /echo)",
        next: &["skyform up", "curl \"$(skyform outputs url)/hello/ada\""],
        rust_function: false,
        files: &[
            // The program's Cargo.toml is the same for every template without a Rust function.
            file!("http-api", "Cargo.toml"),
            file!("node-api", "README.md"),
            file!("node-api", "src/main.rs"),
            file!("node-api", "functions/api/index.mjs"),
        ],
    },
    Template {
        name: "typescript-api",
        about: "a TypeScript function behind an HTTP API, bundled by skyform (GET /hello/{name}, POST /echo)",
        next: &["skyform up", "curl \"$(skyform outputs url)/hello/ada\""],
        rust_function: false,
        files: &[
            file!("http-api", "Cargo.toml"),
            file!("typescript-api", "README.md"),
            file!("typescript-api", "src/main.rs"),
            file!("typescript-api", "functions/api/index.ts"),
            file!("typescript-api", "functions/api/tsconfig.json"),
        ],
    },
    Template {
        name: "rust-api",
        about: "a Rust function (lambda_http) serving every path of an HTTP API",
        next: &["skyform up", "curl \"$(skyform outputs url)/anything?name=ada\""],
        rust_function: true,
        files: &[
            file!("rust-api", "Cargo.toml"),
            file!("rust-api", "README.md"),
            file!("rust-api", "src/main.rs"),
            file!("rust-api", "functions/api/Cargo.toml"),
            file!("rust-api", "functions/api/src/main.rs"),
        ],
    },
    Template {
        name: "queue-worker",
        about: "a queue whose messages a Python worker processes in batches, with a dead-letter queue",
        next: &[
            "skyform up",
            "eval \"$(skyform local env)\"",
            "aws sqs send-message --queue-url \"$(skyform outputs queue_url)\" --message-body '{\"task\": \"resize\"}'",
            "skyform logs worker",
        ],
        rust_function: false,
        files: &[
            file!("http-api", "Cargo.toml"),
            file!("queue-worker", "README.md"),
            file!("queue-worker", "src/main.rs"),
            file!("queue-worker", "functions/worker/app.py"),
        ],
    },
    Template {
        name: "cron-job",
        about: "a Python function run on a schedule (every day at 03:00 UTC)",
        next: &["skyform up", "skyform local run-schedule nightly", "skyform logs job"],
        rust_function: false,
        files: &[
            file!("http-api", "Cargo.toml"),
            file!("cron-job", "README.md"),
            file!("cron-job", "src/main.rs"),
            file!("cron-job", "functions/job/app.py"),
        ],
    },
    Template {
        name: "upload-pipeline",
        about: "files uploaded to a bucket processed by a Python function into a second bucket",
        next: &[
            "skyform up",
            "eval \"$(skyform local env)\"",
            "aws s3 cp README.md \"s3://$(skyform outputs uploads_bucket)/README.md\"",
            "skyform logs process",
        ],
        rust_function: false,
        files: &[
            file!("http-api", "Cargo.toml"),
            file!("upload-pipeline", "README.md"),
            file!("upload-pipeline", "src/main.rs"),
            file!("upload-pipeline", "functions/process/app.py"),
        ],
    },
];

pub async fn run(g: &Global, args: Args) -> Result<ExitCode> {
    let Some(template) = args.template.filter(|_| !args.list) else {
        print_list();
        return Ok(ExitCode::SUCCESS);
    };
    let found = TEMPLATES.iter().find(|t| t.name == template).ok_or_else(|| {
        Error::user(
            format!("there is no template `{template}`; the templates are: {}", template_names()),
            "pick one, e.g. `skyform new http-api my-app`; `skyform new` alone describes them",
        )
    })?;
    let dir = args.directory.expect("clap requires DIR with TEMPLATE");
    let template = found;
    // `-C` means "as if started in DIR", so a relative target is relative to it.
    let target = match &g.dir {
        Some(base) if dir.is_relative() => base.join(&dir),
        _ => dir.clone(),
    };
    check_empty(&target)?;
    let name = match args.name {
        Some(n) => n,
        None => default_name(&target)?,
    };
    if !valid_project_name(&name) {
        return Err(Error::user(
            format!("`{name}` cannot be a project name"),
            "a project name has letters, digits, `-` and `_` and starts with a letter (it is also \
             the name of the program's cargo package); pass `--name NAME`",
        ));
    }

    // The SDK is not published yet: a new project depends by path on the SDK this binary
    // carries, unpacked once under the user's data folder (`cli::sdk_home`).
    let sdk = crate::cli::sdk_home::ensure()?;
    let files = render(template, &name, &sdk.display().to_string())?;
    write_all(&target, &files)?;

    println!("Created project `{name}` from template `{}` in {}", template.name, target.display());
    println!();
    for f in &files {
        println!("  {}", f.0);
    }
    println!();
    println!("Next:");
    if target != Path::new(".") {
        println!("  cd {}", shell_word(&target.display().to_string()));
    }
    for line in template.next {
        println!("  {line}");
    }
    Ok(ExitCode::SUCCESS)
}

fn print_list() {
    let width = TEMPLATES.iter().map(|t| t.name.len()).max().unwrap_or(0);
    println!("Templates (skyform new TEMPLATE DIR):");
    for t in TEMPLATES {
        println!("  {:width$}  {}", t.name, t.about);
    }
}

fn template_names() -> String {
    TEMPLATES.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
}

fn default_name(target: &Path) -> Result<String> {
    // `skyform new http-api .` names the project after the current folder.
    let absolute = if target.is_absolute() {
        target.to_path_buf()
    } else {
        std::env::current_dir().map_err(|e| Error::io("reading the current directory", e))?.join(target)
    };
    let base = absolute.components().rfind(|c| !matches!(c, std::path::Component::CurDir));
    match base {
        Some(std::path::Component::Normal(n)) => Ok(n.to_string_lossy().into_owned()),
        _ => Err(Error::user(
            format!("cannot name a project after `{}`", target.display()),
            "pass `--name NAME`",
        )),
    }
}

/// A project name is also the program's cargo package name, so it follows both rules.
fn valid_project_name(name: &str) -> bool {
    crate::project::valid_name(name) && name.starts_with(|c: char| c.is_ascii_alphabetic())
}

/// Refuses to write into a folder that has anything in it: a scaffold never overwrites.
fn check_empty(target: &Path) -> Result<()> {
    match std::fs::read_dir(target) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(Error::user(
                    format!("{} is not empty", target.display()),
                    "pick a new folder (skyform new creates it), or empty this one",
                ));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => Err(Error::user(
            format!("{} is a file, not a folder", target.display()),
            "pick a new folder; skyform new creates it",
        )),
        Err(e) => Err(Error::io(format!("reading {}", target.display()), e)),
    }
}

/// Renders every file of the template: (path in the project, contents).
fn render(template: &Template, name: &str, sdk_path: &str) -> Result<Vec<(&'static str, String)>> {
    let mut hb = handlebars::Handlebars::new();
    // Unknown variables are errors, and nothing is HTML-escaped: these are source files.
    hb.set_strict_mode(true);
    hb.register_escape_fn(handlebars::no_escape);
    let data = json!({
        "name": name,
        "template": template.name,
        "sdk_path": toml_string(sdk_path),
        "version": env!("CARGO_PKG_VERSION"),
        "rust_function": template.rust_function,
    });
    COMMON_FILES
        .iter()
        .chain(template.files)
        .map(|f| {
            let text = hb.render_template(f.source, &data).map_err(|e| {
                Error::user(
                    format!("the template `{}` has a broken file {}: {e}", template.name, f.path),
                    "this is a bug in skyform; please report it",
                )
            })?;
            Ok((f.path, text))
        })
        .collect()
}

fn write_all(target: &Path, files: &[(&'static str, String)]) -> Result<()> {
    for (path, text) in files {
        let p = target.join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
        }
        std::fs::write(&p, text).map_err(|e| Error::io(format!("writing {}", p.display()), e))?;
    }
    Ok(())
}

/// A TOML basic string holding `s`.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `s` quoted for a POSIX shell when it needs it, so the printed `cd` line can be pasted.
fn shell_word(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./+:@%".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_renders() {
        for t in TEMPLATES {
            let files = render(t, "demo-app", "/opt/sdk").unwrap();
            assert!(files.iter().any(|(p, _)| *p == "Skyform.toml"));
            let cargo = files.iter().find(|(p, _)| *p == "Cargo.toml").unwrap();
            assert!(cargo.1.contains("name = \"demo-app\""), "{}", cargo.1);
            assert!(cargo.1.contains(&toml_string("/opt/sdk")), "{}", cargo.1);
        }
    }

    #[test]
    fn names() {
        assert!(valid_project_name("shop-2_b"));
        assert!(!valid_project_name("2shop"));
        assert!(!valid_project_name("my app"));
        assert_eq!(toml_string("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(shell_word("my app"), "'my app'");
        assert_eq!(shell_word("shop"), "shop");
    }
}
