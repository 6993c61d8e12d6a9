//! The `Function` component: code that runs on demand, behind the AWS Lambda programming model.
//!
//! A function is either an interpreted package (`Function::new(..).code("functions/hello")`,
//! Python or Node.js, started through `handler`) or a Rust binary built from a cargo package of
//! the project (`Function::rust(..)`, runtime `provided`). Every target runs it with Lambda's
//! event payloads, so the same code deploys locally and on AWS.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::component::{Component, Expansion, component_handle};
use crate::{Error, Program, Ref, ResourceOptions, Target, aws, local};

/// The language runtime a function runs in. Every runtime names a version, on every target:
/// `Python3` is `python3.12` and `Nodejs` is `nodejs22.x` (Lambda's names); pick another with
/// `Runtime::Custom("python3.13".into())`. The local cloud runs the function with an
/// interpreter of that version when the machine has one, and otherwise says which runs instead.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Runtime {
    /// Python (`python3.12`).
    Python3,
    /// Node.js (`nodejs22.x`).
    Nodejs,
    /// A native executable implementing the Lambda Runtime API (`provided`), such as a Rust
    /// binary.
    Provided,
    /// Any other runtime name, passed through as written (e.g. `python3.12`); the provider
    /// validates it.
    Custom(String),
}

impl Runtime {
    /// The name written in the manifest, with its version (`python3.12`, `nodejs22.x`,
    /// `provided.al2023`).
    pub fn as_str(&self) -> &str {
        match self {
            Runtime::Python3 => "python3.12",
            Runtime::Nodejs => "nodejs22.x",
            Runtime::Provided => "provided.al2023",
            Runtime::Custom(name) => name,
        }
    }
}

/// The processor a function runs on. On `aws`, Lambda's `Architectures`; a Rust function is
/// built for it. The local cloud runs functions on the machine's own processor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Architecture {
    /// `x86_64` (the default).
    #[default]
    X86_64,
    /// `arm64` (Graviton).
    Arm64,
}

impl Architecture {
    /// Lambda's name: `x86_64` or `arm64`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Architecture::X86_64 => "x86_64",
            Architecture::Arm64 => "arm64",
        }
    }
}

/// A function, described with a builder and declared with [`Program::add`]:
///
/// ```
/// use skyform_sdk::{Function, Program, Runtime, Target};
/// let ctx = Program::new("p", "dev", Target::Local, serde_json::json!({}));
/// let hello = ctx.add(
///     Function::new("hello")
///         .code("functions/hello")
///         .handler("app.handler")
///         .runtime(Runtime::Python3)
///         .env("GREETING", "Hello")
///         .memory(256)
///         .timeout_secs(10),
/// ).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct Function {
    pub(crate) name: String,
    pub(crate) code: Option<String>,
    pub(crate) cargo_package: Option<String>,
    pub(crate) handler: Option<String>,
    pub(crate) runtime: Option<Runtime>,
    pub(crate) environment: BTreeMap<String, Value>,
    pub(crate) memory: u32,
    pub(crate) timeout: u32,
    pub(crate) reserved_concurrency: Option<u32>,
    pub(crate) architecture: Architecture,
    /// `(actions, resource)` pairs the function's code may call ([`Function::allow`]).
    pub(crate) permissions: Vec<(Vec<String>, Value)>,
    pub(crate) options: ResourceOptions,
}

/// Lambda's defaults, which the local cloud mirrors so that a function behaves the same there.
const DEFAULT_MEMORY_MB: u32 = 128;
const DEFAULT_TIMEOUT_SECS: u32 = 3;

impl Function {
    /// A function named `name`. Set its [`code`](Function::code), [`handler`](Function::handler)
    /// and [`runtime`](Function::runtime) before adding it.
    pub fn new(name: impl Into<String>) -> Function {
        Function {
            name: name.into(),
            code: None,
            cargo_package: None,
            handler: None,
            runtime: None,
            environment: BTreeMap::new(),
            memory: DEFAULT_MEMORY_MB,
            timeout: DEFAULT_TIMEOUT_SECS,
            reserved_concurrency: None,
            architecture: Architecture::X86_64,
            permissions: Vec::new(),
            options: ResourceOptions::default(),
        }
    }

    /// A Rust function built from the cargo package `package` of the project (the package name,
    /// not a path), typically a `lambda_runtime` or `lambda_http` binary. Its runtime is
    /// `provided` and its handler `bootstrap`.
    ///
    /// skyform builds it with `cargo build --release -p PACKAGE` in the project folder, which
    /// finds the package when it is a member of the project's cargo workspace. When it is a cargo
    /// project of its own (its own `[workspace]` table, so that the infrastructure program does
    /// not compile the function's dependencies), also give its folder with
    /// [`code`](Function::code): `Function::rust("api", "api-fn").code("functions/api")`.
    pub fn rust(name: impl Into<String>, package: impl Into<String>) -> Function {
        let mut f = Function::new(name);
        f.cargo_package = Some(package.into());
        f.runtime = Some(Runtime::Provided);
        f.handler = Some("bootstrap".to_string());
        f
    }

    /// The folder holding the code, relative to the project folder (`functions/hello`). For a
    /// [`Function::rust`], the folder of the cargo package (the one holding its `Cargo.toml`).
    pub fn code(mut self, path: impl Into<String>) -> Self {
        self.code = Some(path.into());
        self
    }

    /// The entry point: `module.function` for Python (`app.handler`), `file.export` for Node.js.
    pub fn handler(mut self, handler: impl Into<String>) -> Self {
        self.handler = Some(handler.into());
        self
    }

    /// The runtime.
    pub fn runtime(mut self, runtime: Runtime) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// Sets an environment variable. The value may be a string or a reference, such as a
    /// queue's URL: `.env("QUEUE_URL", jobs.url())`.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.environment.insert(key.into(), value.into());
        self
    }

    /// Memory in MB (default 128).
    pub fn memory(mut self, mb: u32) -> Self {
        self.memory = mb;
        self
    }

    /// How long one invocation may run, in seconds (default 3).
    pub fn timeout_secs(mut self, secs: u32) -> Self {
        self.timeout = secs;
        self
    }

    /// The most instances that may run at once (default: no reservation).
    pub fn reserved_concurrency(mut self, n: u32) -> Self {
        self.reserved_concurrency = Some(n);
        self
    }

    /// The processor to run on, on `aws` (default `x86_64`); a [`Function::rust`] is built for
    /// it.
    pub fn architecture(mut self, architecture: Architecture) -> Self {
        self.architecture = architecture;
        self
    }

    /// Lets the function's code call `actions` (IAM action names such as `sqs:SendMessage`) on
    /// `resource`, an ARN or a reference to one: `.allow(&["sns:Publish"], events.arn())`.
    ///
    /// On `aws` this is a statement of the inline policy `NAME-access` on the function's role;
    /// without it, a call from the code with boto3 is refused (AccessDenied). The local cloud
    /// does not enforce IAM (any signed request with its credentials is allowed), so on `local`
    /// it declares nothing; declare it anyway, so the same program works on both.
    pub fn allow(mut self, actions: &[&str], resource: impl Into<Value>) -> Self {
        self.permissions.push((actions.iter().map(|a| a.to_string()).collect(), resource.into()));
        self
    }

    /// Options applied to every resource of the function; `parent` nests the component.
    pub fn options(mut self, options: ResourceOptions) -> Self {
        self.options = options;
        self
    }

    /// What every target needs: a source, a handler and a runtime.
    fn validate(&self) -> Result<(), Error> {
        let fail = |reason: &str| Err(Error::invalid(&self.name, reason));
        if self.code.is_none() && self.cargo_package.is_none() {
            return fail(
                "the function has no code: call `.code(\"functions/NAME\")`, or use `Function::rust(NAME, PACKAGE)`",
            );
        }
        if self.handler.as_deref().is_none_or(str::is_empty) {
            return fail("the function has no handler: call `.handler(\"app.handler\")` (module.function)");
        }
        match &self.runtime {
            None => {
                fail("the function has no runtime: call `.runtime(Runtime::Python3)` (or Nodejs, Provided)")
            }
            Some(Runtime::Custom(name)) if name.is_empty() => fail("the runtime name is empty"),
            Some(_) => Ok(()),
        }
    }
}

impl Component for Function {
    type Handle = FunctionHandle;

    fn add_to(self, ctx: &Program) -> Result<FunctionHandle, Error> {
        self.validate()?;
        let expansion = match ctx.target() {
            Target::Local => local::function(ctx, &self),
            Target::Aws => aws::function(ctx, &self)?,
        };
        Ok(FunctionHandle { expansion })
    }
}

/// A declared [`Function`]: pass it to routes, subscriptions and schedules.
#[derive(Debug, Clone)]
pub struct FunctionHandle {
    pub(crate) expansion: Expansion,
}
component_handle!(FunctionHandle);

impl FunctionHandle {
    /// The function's physical name, what triggers invoke.
    pub fn function_name(&self) -> Ref {
        self.expansion.output("function_name")
    }

    /// The function's ARN (on the local cloud, a local ARN of the same shape).
    pub fn arn(&self) -> Ref {
        self.expansion.output("arn")
    }
}
