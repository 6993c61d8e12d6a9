//! The everyday conveniences of the CLI, through the real binary in sealed temporary projects
//! (the fake and core providers; the local cloud where a message is about it): completion
//! scripts, colour (`--color`, `NO_COLOR`, on a real terminal made by `script`), project
//! discovery upward, `stack select`, the `yes / no / details` prompt, the shadowed-route
//! warning, messages that fit the command and the provider, and a closed output (`| head`).

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{Run, TestEnv};
use serde_json::json;

fn one_resource() -> serde_json::Value {
    json!([{"name": "a", "type": "core:Data", "inputs": {"value": "hello"}}])
}

/// Escape sequences made visible for snapshots.
fn visible(s: &str) -> String {
    s.replace('\x1b', "\\e")
}

/// `skyform ARGS` on a real terminal (a pty made by `script`), with `answers` typed in and extra
/// environment variables. The pty merges stdout and stderr and turns `\n` into `\r\n`.
fn on_terminal(env: &TestEnv, args: &[&str], answers: &str, vars: &[(&str, &str)]) -> Run {
    let exe = common::skyform_exe();
    // `stty -echo`: what is typed is not echoed, so the output does not depend on when the
    // answers arrive.
    let line = std::iter::once(format!("stty -echo; {}", exe.display()))
        .chain(args.iter().map(|a| format!("'{a}'")))
        .collect::<Vec<_>>()
        .join(" ");
    let mut cmd = env.command(&[]);
    // `script -e` exits with the command's code; `-c` runs it on a new pty.
    cmd.env("TERM", "xterm");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let mut script = Command::new("script");
    script.args(["-qec", &line, "/dev/null"]).current_dir(env.path()).env_clear();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            script.env(k, v);
        }
    }
    let mut child =
        script.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect(
            "`script` (util-linux) runs commands on a pseudo-terminal for these tests; install util-linux",
        );
    // Read the terminal as it goes; type the answers only once the question is asked (typed
    // earlier, they would be echoed before `stty -echo` runs).
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = std::io::Read::read(&mut stdout, &mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut stdin = child.stdin.take().unwrap();
    if !answers.is_empty() {
        while !String::from_utf8_lossy(&seen).contains("[yes/no") {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(chunk) => seen.extend(chunk),
                Err(_) => panic!("no question within 30 s:\n{}", String::from_utf8_lossy(&seen)),
            }
        }
        stdin.write_all(answers.as_bytes()).unwrap();
    }
    drop(stdin);
    let status = child.wait().unwrap();
    reader.join().unwrap();
    seen.extend(rx.try_iter().flatten());
    let mut stderr = Vec::new();
    let _ = std::io::Read::read_to_end(&mut child.stderr.take().unwrap(), &mut stderr);
    let out = std::process::Output { status, stdout: seen, stderr };
    let text = |b: &[u8]| common::normalize(&String::from_utf8_lossy(b).replace("\r\n", "\n"), env.path());
    Run { code: out.status.code().unwrap_or(-1), stdout: text(&out.stdout), stderr: text(&out.stderr) }
}

/// `skyform ... | head -1`: a reader that goes away ends the command as SIGPIPE ends any Unix
/// tool, not with a panic and a backtrace on stderr.
#[test]
fn a_closed_output_ends_the_command_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let env = TestEnv::new("closedpipe");
    env.manifest_with_outputs(one_resource(), json!({"greeting": {"$ref": "a", "output": "value"}}));
    env.run(&["up", "--yes"]).ok();
    for args in [&["outputs"][..], &["stack", "history"], &["new"]] {
        // The reading end is closed before the command starts: its first write fails.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = env.command(args).stdout(writer).stderr(Stdio::piped()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "skyform {args:?}: {:?}\n{stderr}", out.status);
        assert!(!stderr.contains("panicked"), "skyform {args:?}:\n{stderr}");
    }
}

#[test]
fn completion_scripts() {
    let env = TestEnv::new("completion");
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let run = env.run(&["completion", shell]);
        run.ok();
        assert!(run.stdout.contains("skyform"), "{shell}");
        // Every command and the new flags are offered.
        for word in ["preview", "destroy", "completion", "select", "color"] {
            assert!(run.stdout.contains(word), "{shell} completion lacks {word}");
        }
        insta::assert_snapshot!(format!("completion_{shell}"), run.stdout);
    }
    // The bash script is valid bash.
    let script = env.run(&["completion", "bash"]).stdout;
    env.write("skyform.bash", &script);
    let check = Command::new("bash").arg("-n").arg(env.path().join("skyform.bash")).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    let bad = env.run(&["completion", "tcsh"]);
    assert_eq!(bad.code, 2, "{}", bad.text());
}

#[test]
fn colour_follows_the_flag_the_terminal_and_no_color() {
    let env = TestEnv::new("colour");
    env.fake_config("");
    env.manifest(json!([
        {"name": "a", "type": "core:Data", "inputs": {"value": "hello"}},
        {"name": "b", "type": "fake:Resource", "inputs": {"n": 1}}
    ]));
    // Into a pipe: no colour unless asked for.
    let plain = env.run(&["preview"]);
    assert!(!plain.stdout.contains('\x1b'), "{}", plain.stdout);
    let always = env.run(&["--color", "always", "preview"]);
    insta::assert_snapshot!("colour_preview_always", visible(&always.text()));
    assert!(always.stdout.contains("\x1b[32m+"), "{}", always.stdout);
    let error = env.run(&["--color", "always", "-C", "nowhere", "preview"]);
    assert!(error.stderr.starts_with("\x1b[1;31merror:\x1b[0m"), "{}", visible(&error.stderr));

    // On a terminal: colour by default; not with NO_COLOR, nor with --color never.
    let tty = on_terminal(&env, &["preview"], "", &[]);
    assert_eq!(tty.code, 0, "{}", tty.text());
    assert!(tty.stdout.contains("\x1b[32m+"), "{}", visible(&tty.stdout));
    let no_color = on_terminal(&env, &["preview"], "", &[("NO_COLOR", "1")]);
    assert_eq!(no_color.code, 0, "{}", no_color.text());
    assert!(!no_color.stdout.contains('\x1b'), "{}", visible(&no_color.stdout));
    insta::assert_snapshot!("colour_preview_no_color", no_color.stdout);
    // The same text as into a pipe.
    assert_eq!(no_color.stdout, plain.stdout);
    let never = on_terminal(&env, &["--color", "never", "preview"], "", &[]);
    assert!(!never.stdout.contains('\x1b'), "{}", visible(&never.stdout));
    // --color always beats NO_COLOR.
    let forced = env.run_with(&["--color", "always", "preview"], &[("NO_COLOR", "1")]);
    assert!(forced.stdout.contains('\x1b'));

    // Under --json nothing is coloured, not even a warning on stderr (here: the program now
    // declares nothing, so the preview warns that it deletes everything), nor an error.
    env.run(&["up", "--yes"]).ok();
    env.manifest(json!([]));
    for args in [
        &["preview", "--json"][..],
        &["--color", "always", "preview", "--json"],
        &["outputs", "nope", "--json"],
    ] {
        let run = on_terminal(&env, args, "", &[]);
        assert!(!run.stdout.contains('\x1b'), "{args:?}: {}", visible(&run.stdout));
    }
    let warned = on_terminal(&env, &["preview", "--json"], "", &[]);
    assert!(warned.stdout.contains("DELETES ALL 2 resources"), "{}", warned.text());
}

#[test]
fn the_project_is_found_from_a_subfolder() {
    let env = TestEnv::new("discovery");
    env.manifest(one_resource());
    env.write("functions/hello/app.py", "");
    let sub = env.path().join("functions/hello");
    let out = env.command(&["up", "--yes"]).current_dir(&sub).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The state is the project's, not the subfolder's.
    assert!(env.path().join("state/dev.json").is_file());
    assert!(!sub.join("state").exists());
    let outputs = env.command(&["stack", "ls"]).current_dir(&sub).output().unwrap();
    assert!(String::from_utf8_lossy(&outputs.stdout).contains("dev"), "{outputs:?}");
    // -C a subfolder works the same.
    env.run(&["-C", "functions/hello", "stack", "ls"]).ok();

    // Outside any project: an error that says so, about the folder and those above it.
    let outside = common::tempdir::TempDir::new("no-project");
    let out = env.command(&["preview"]).current_dir(outside.path()).output().unwrap();
    let text = |b: &[u8]| common::normalize(&String::from_utf8_lossy(b), outside.path());
    let run =
        Run { code: out.status.code().unwrap_or(-1), stdout: text(&out.stdout), stderr: text(&out.stderr) };
    assert_eq!(run.code, 1, "{}", run.text());
    insta::assert_snapshot!("discovery_outside", run.text());
}

#[test]
fn stack_select_is_remembered_per_project() {
    let env = TestEnv::new("select");
    env.manifest(one_resource());
    // The program names the stack it is run for, as programs do (from SKYFORM_STACK).
    env.write(
        "prog.sh",
        "sed \"s/\\\"stack\\\": \\\"dev\\\"/\\\"stack\\\": \\\"$SKYFORM_STACK\\\"/\" manifest.json\n",
    );
    env.write("Skyform.toml", "name = \"demo\"\nprogram = \"sh prog.sh\"\n");
    env.run(&["stack", "init", "prod"]).ok();
    env.run(&["stack", "init", "staging"]).ok();
    std::fs::remove_file(env.path().join("Skyform.dev.toml")).unwrap();
    // Two stacks, none named dev: ambiguous until one is selected.
    let which = env.run(&["preview"]);
    assert_eq!(which.code, 1);
    assert!(which.stderr.contains("`skyform stack select NAME`"), "{}", which.text());

    let select = env.run(&["stack", "select", "staging"]);
    insta::assert_snapshot!("stack_select", select.text());
    select.ok();
    assert_eq!(env.read(".skyform/stack"), "staging\n");
    let preview = env.run(&["preview"]).ok().stdout.clone();
    assert!(preview.starts_with("Previewing update (staging):"), "{preview}");
    let ls = env.run(&["stack", "ls"]);
    insta::assert_snapshot!("stack_select_ls", ls.text());
    // -s and SKYFORM_STACK still win, for one command.
    assert!(env.run(&["-s", "prod", "preview"]).ok().stdout.starts_with("Previewing update (prod):"));
    let by_env = env.run_with(&["preview"], &[("SKYFORM_STACK", "prod")]);
    assert!(by_env.ok().stdout.starts_with("Previewing update (prod):"));
    // Up goes to the selected stack.
    env.run(&["up", "--yes"]).ok();
    assert!(env.path().join("state/staging.json").is_file());
    assert!(!env.path().join("state/prod.json").exists());
    // Every view of the stack's contents names it.
    env.run(&["config", "set", "region", "eu-west-1"]).ok();
    assert!(env.run(&["config", "ls"]).ok().stdout.starts_with("Config (staging):"));
    assert!(env.run(&["stack", "history"]).ok().stdout.starts_with("History (staging)"));
    assert!(env.run(&["outputs"]).ok().stdout.contains("stack `staging`"));

    // An unknown stack cannot be selected; the selection stays.
    let unknown = env.run(&["stack", "select", "qa"]);
    assert_eq!(unknown.code, 1);
    insta::assert_snapshot!("stack_select_unknown", unknown.text());
    assert_eq!(env.read(".skyform/stack"), "staging\n");

    // A selected stack whose file went away is reported, not silently replaced.
    env.run(&["stack", "select", "prod"]).ok();
    std::fs::rename(env.path().join("Skyform.prod.toml"), env.path().join("prod.toml.bak")).unwrap();
    let gone = env.run(&["preview"]);
    assert_eq!(gone.code, 1);
    assert!(gone.stderr.contains("the selected stack `prod` does not exist any more"), "{}", gone.text());
    std::fs::rename(env.path().join("prod.toml.bak"), env.path().join("Skyform.prod.toml")).unwrap();
    // Removing the selected stack clears the selection.
    env.run(&["stack", "rm", "prod"]).ok();
    assert!(!env.path().join(".skyform/stack").exists());
}

#[test]
fn the_prompt_offers_yes_no_and_details() {
    let env = TestEnv::new("prompt");
    env.fake_config("");
    env.manifest(json!([{"name": "b", "type": "fake:Resource", "inputs": {"n": 1}}]));
    // `details` shows every input, an unknown answer asks again, `no` changes nothing.
    let no = on_terminal(&env, &["--color", "never", "up"], "details\nmaybe\nno\n", &[]);
    assert_eq!(no.code, 0, "{}", no.text());
    insta::assert_snapshot!("prompt_details_then_no", no.stdout);
    assert!(!env.path().join("state/dev.json").exists());
    // `yes` applies.
    let yes = on_terminal(&env, &["--color", "never", "up"], "yes\n", &[]);
    assert_eq!(yes.code, 0, "{}", yes.text());
    assert!(yes.stdout.contains("+  1 created"), "{}", yes.stdout);
    assert_eq!(env.store_counts().len(), 1);
    // Destroy asks the same way; end of input is a no.
    let eof = on_terminal(&env, &["--color", "never", "destroy"], "", &[]);
    assert!(eof.stdout.contains("[yes/no/details]"), "{}", eof.stdout);
    assert_eq!(env.store_counts().len(), 1);

    // Without a terminal: refused, with a hint about the plan that was shown...
    let piped = env.run(&["destroy"]);
    assert_eq!(piped.code, 1);
    assert!(piped.stderr.contains("pass `--yes` to delete the resources listed above"), "{}", piped.text());
    // ...and, under --json, no mention of a plan that was not shown.
    let json = env.run(&["destroy", "--json"]);
    assert_eq!(json.code, 1, "{}", json.text());
    assert!(!json.text().contains("shown above") && !json.text().contains("listed above"), "{}", json.text());
    let err: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(err["error"]["kind"], "user");
    assert!(err["error"]["hint"].as_str().unwrap().contains("--yes"), "{err}");
    let up_json = env.run(&["up", "--json"]);
    assert!(!up_json.text().contains("shown above"), "{}", up_json.text());
}

#[test]
fn shadowed_routes_are_warned_about_at_preview() {
    let env = TestEnv::new("shadow");
    let routes = |second: &str| {
        json!([{"name": "api", "type": "local:HttpApi", "inputs": {"routes": [
            {"route": "GET /notes/{id}", "function": "f"},
            {"route": second, "function": "f"},
            {"route": "GET /notes/{id}/tags", "function": "f"}
        ]}}])
    };
    env.manifest(routes("GET /notes/{name}"));
    let preview = env.run(&["preview"]);
    preview.ok();
    insta::assert_snapshot!("shadowed_routes", preview.stderr);
    // Also with --json (on stderr: stdout stays the plan).
    let json = env.run(&["preview", "--json"]);
    assert!(json.stderr.contains("`GET /notes/{id}` and `GET /notes/{name}`"), "{}", json.text());
    serde_json::from_str::<serde_json::Value>(&json.stdout).unwrap();
    // Different methods or shapes do not shadow each other.
    env.manifest(routes("POST /notes/{name}"));
    let fine = env.run(&["preview"]);
    assert!(!fine.stderr.contains("warning"), "{}", fine.text());
}

#[test]
fn destroying_an_aws_stack_says_nothing_about_the_local_cloud() {
    let env = TestEnv::new("aws-destroy");
    let _stop = common::StopDaemon(&env);
    env.manifest(json!([]));
    env.run(&["stack", "init", "prod", "--provider", "aws"]).ok();
    env.run(&["local", "start"]).ok();
    let destroy = env.run(&["-s", "prod", "destroy", "--yes"]);
    destroy.ok();
    assert!(!destroy.text().contains("local cloud"), "{}", destroy.text());
    // It is still running: destroying another provider's stack leaves it alone.
    assert!(env.run(&["local", "status"]).ok().stdout.starts_with("the local cloud runs"));
    // Destroying the (empty) local stack does stop the idle local cloud, and says so.
    let local = env.run(&["-s", "dev", "destroy", "--yes"]);
    assert!(local.ok().stderr.contains("stopped the local cloud"), "{}", local.text());
}
