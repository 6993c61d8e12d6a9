//! hello-http: one Python function behind an HTTP API.
//!
//! `skyform up` runs this program, which prints the manifest; on the local cloud it deploys
//! one `local:Function` and one `local:HttpApi`. Then:
//!
//! ```text
//! curl "$(skyform outputs url)/hello/ada"   # Hello, ada!
//! curl "$(skyform outputs url)/hello"       # Hello, world!
//! ```

use skyform_sdk::{Function, HttpApi, Runtime};

fn main() {
    skyform_sdk::run(|ctx| {
        // functions/hello/app.py, function `handler`.
        let hello = ctx.add(
            Function::new("hello")
                .code("functions/hello")
                .handler("app.handler")
                .runtime(Runtime::Python3)
                .memory(128)
                .timeout_secs(3),
        )?;

        let api =
            ctx.add(HttpApi::new("api").route("GET /hello/{name}", &hello).route("GET /hello", &hello))?;

        ctx.export("url", api.url());
        Ok(())
    })
}
