//! rust-api: a Rust function serving every path of an HTTP API.
//!
//! The function is the cargo package `rust-api-fn` in `functions/api`, a `lambda_http` binary;
//! skyform builds it for the target (runtime `provided`) and the local cloud runs it behind the
//! Lambda Runtime API, exactly as Lambda would.
//!
//! ```text
//! curl "$(skyform outputs url)/anything/at/all"
//! ```

use skyform_sdk::{Function, HttpApi};

fn main() {
    skyform_sdk::run(|ctx| {
        // The package is a cargo project of its own (see functions/api/Cargo.toml), so skyform
        // is told where it is; a member of the project's cargo workspace would need no `.code`.
        let api_fn = ctx.add(
            Function::rust("api", "rust-api-fn")
                .code("functions/api")
                .env("RUST_LOG", "info")
                .memory(128)
                .timeout_secs(5),
        )?;

        let http = ctx.add(HttpApi::new("http").route("ANY /{proxy+}", &api_fn))?;

        ctx.export("url", http.url());
        Ok(())
    })
}
