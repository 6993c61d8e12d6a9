//! The local cloud comes back: before `up` plans, the stack's recorded local resources are
//! checked against what the project's local cloud really serves.
//!
//! `up` plans from the state and the program; a resource whose inputs did not change is not
//! touched, so without this step an `up` after `skyform local stop`, a reboot, a `kill -9` of
//! the daemon or a wiped `.skyform/local/` would report "unchanged" while nothing is served.
//! So: when the stack records `local:` resources, the daemon is started if it is down (it
//! restores what its registry holds), and every recorded function, HTTP API and schedule must
//! be there (an API must be listening); after a wipe, every recorded resource counts as gone.
//! What is missing is refreshed out of the state first (the `refresh` use case: it reads each
//! resource), so the plan recreates it, and the user is told.

use skyform_local::{DaemonStatus, LocalError, layout::Layout};

use crate::engine::Session;
use crate::error::{Error, Result};
use crate::state::ResourceState;

fn local_error(e: LocalError) -> Error {
    Error::user(
        e.message,
        "see .skyform/local/daemon.log; `skyform local stop` then `skyform local start` restarts it",
    )
}

/// Starts the local cloud when the stack records local resources and it is down, and refreshes
/// out of the state what it does not serve (see the module docs). `saved_plan`: `up --plan`,
/// which cannot take a refreshed state, so lost resources are an error there.
pub async fn bring_back(session: &Session, saved_plan: bool) -> Result<()> {
    let snap = session.export()?;
    let recorded: Vec<&ResourceState> =
        snap.resources.iter().filter(|r| r.type_.starts_with("local:")).collect();
    if recorded.is_empty() {
        return Ok(());
    }
    let dir = session.project.dir.clone();
    let layout = Layout::new(&dir);
    // Every daemon start makes `daemon.lock`; none means the folder was deleted (or never made).
    let wiped = !layout.daemon_lock().exists();
    let running = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || skyform_local::status(&dir)
    })
    .await
    .map_err(|e| Error::user(e.to_string(), "run the command again"))?
    .map_err(local_error)?
    .is_some();
    let status = tokio::task::spawn_blocking(move || skyform_local::start(&dir))
        .await
        .map_err(|e| Error::user(e.to_string(), "run the command again"))?
        .map_err(local_error)?;
    if !running && !wiped {
        eprintln!("started the local cloud (it was not running): it serves again what it had deployed");
    }
    let lost: Vec<String> = recorded
        .iter()
        .filter_map(|r| lost(r, &status, &session.stack, wiped).map(|why| format!("{} ({why})", r.name)))
        .collect();
    if lost.is_empty() {
        return Ok(());
    }
    let what = if wiped { ".skyform/local was deleted" } else { "the local cloud does not serve them" };
    if saved_plan {
        return Err(Error::user(
            format!(
                "the state records {} local resource(s) that are not running ({what}): {}",
                lost.len(),
                lost.join(", ")
            ),
            "a saved plan cannot recreate them: run `skyform up` without --plan",
        ));
    }
    eprintln!(
        "the state records {} local resource(s) that are not running ({what}): {}; \
         refreshing the state so that this `up` recreates them",
        lost.len(),
        lost.join(", ")
    );
    session.refresh_state(&mut |_drift, changed| Ok(changed)).await?;
    Ok(())
}

/// Why a recorded resource is not served, or `None` when it is (or cannot be told apart
/// from the status, and the folder was not wiped).
fn lost(r: &ResourceState, status: &DaemonStatus, stack: &str, wiped: bool) -> Option<&'static str> {
    if wiped {
        return Some("gone");
    }
    match r.type_.as_str() {
        "local:Function" => {
            (!status.functions.iter().any(|f| f.stack == stack && f.name == r.name)).then_some("not deployed")
        }
        "local:HttpApi" => match status.apis.iter().find(|a| a.stack == stack && a.name == r.name) {
            None => Some("not deployed"),
            Some(a) if !a.listening => Some("not listening: its port is taken"),
            Some(_) => None,
        },
        "local:Schedule" => {
            (!status.schedules.iter().any(|s| s.stack == stack && s.name == r.name)).then_some("not deployed")
        }
        _ => None,
    }
}
