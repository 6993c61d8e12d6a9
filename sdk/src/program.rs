//! The program context: who is being deployed where, and the record of everything declared.
//!
//! A [`Program`] is what `run` hands to the closure (conventionally called `ctx`). It carries the
//! project, the stack, the target provider and the stack's config, and it records every
//! resource, component and stack output the closure declares, in declaration order. At the end,
//! [`Program::manifest`] turns that record into manifest format v1.
//!
//! Handles returned by the program (resources, components) keep a cheap clone of it, so that
//! `queue.subscribe(&worker)` can declare more resources without being passed `ctx` again. That
//! is why the record sits behind `Rc<RefCell<..>>`: a program is single-threaded, and every
//! borrow is released before control returns to user code, so the `RefCell` can never be found
//! borrowed.

use std::cell::RefCell;
use std::fmt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::component::{Component, ComponentRef};
use crate::options::ResourceOptions;
use crate::resource::{Resource, ResourceType};
use crate::{Error, manifest};

/// The provider a stack deploys to, from `SKYFORM_PROVIDER`. Components expand into different
/// resources for each target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// The local cloud on the developer's machine (the default).
    Local,
    /// Amazon Web Services.
    Aws,
}

impl Target {
    /// The provider name, as in `Skyform.<stack>.toml`: `local` or `aws`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Target::Local => "local",
            Target::Aws => "aws",
        }
    }

    /// Parses a provider name; `None` for one the SDK has no components for.
    pub fn parse(name: &str) -> Option<Target> {
        match name {
            "local" => Some(Target::Local),
            "aws" => Some(Target::Aws),
            _ => None,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A resource as declared, before it is written to the manifest.
#[derive(Debug, Clone)]
pub(crate) struct ResourceRecord {
    pub name: String,
    pub type_: String,
    pub inputs: Value,
    pub options: ResourceOptions,
}

/// A component as declared.
#[derive(Debug, Clone)]
pub(crate) struct ComponentRecord {
    pub name: String,
    pub type_: String,
    pub parent: Option<String>,
}

#[derive(Debug, Default)]
pub(crate) struct Records {
    pub resources: Vec<ResourceRecord>,
    pub components: Vec<ComponentRecord>,
    pub outputs: Map<String, Value>,
}

#[derive(Debug)]
struct Shared {
    project: String,
    stack: String,
    target: Target,
    config: Value,
    project_dir: Option<PathBuf>,
    records: RefCell<Records>,
}

/// The context of one program run: see the [module documentation](self).
///
/// Cloning is cheap and yields the same program (both clones record into one manifest).
#[derive(Clone)]
pub struct Program {
    shared: Rc<Shared>,
}

impl fmt::Debug for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let records = self.shared.records.borrow();
        f.debug_struct("Program")
            .field("project", &self.shared.project)
            .field("stack", &self.shared.stack)
            .field("target", &self.shared.target)
            .field("resources", &records.resources.len())
            .field("components", &records.components.len())
            .finish()
    }
}

impl Program {
    /// A program for `project`'s `stack` deploying to `target`, with the stack's `config` (a JSON
    /// object; anything else is treated as no config). This is how tests build manifests without
    /// touching the environment; `run` uses [`Program::from_env`].
    pub fn new(
        project: impl Into<String>,
        stack: impl Into<String>,
        target: Target,
        config: Value,
    ) -> Program {
        Program {
            shared: Rc::new(Shared {
                project: project.into(),
                stack: stack.into(),
                target,
                config,
                project_dir: None,
                records: RefCell::default(),
            }),
        }
    }

    /// Sets the project folder (`SKYFORM_PROJECT_DIR`). Call it before declaring anything.
    pub fn with_project_dir(self, dir: impl Into<PathBuf>) -> Program {
        let shared = Shared {
            project: self.shared.project.clone(),
            stack: self.shared.stack.clone(),
            target: self.shared.target,
            config: self.shared.config.clone(),
            project_dir: Some(dir.into()),
            records: RefCell::new(std::mem::take(&mut *self.shared.records.borrow_mut())),
        };
        Program { shared: Rc::new(shared) }
    }

    /// Reads the program's context from the variables `skyform` sets: `SKYFORM_PROJECT` and
    /// `SKYFORM_STACK` (required), `SKYFORM_PROVIDER` (`local` when unset), `SKYFORM_CONFIG` (a
    /// JSON object, `{}` when unset) and `SKYFORM_PROJECT_DIR` (optional).
    pub fn from_env() -> Result<Program, Error> {
        Program::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Program::from_env`] with the variables read through `lookup`, for tests.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Program, Error> {
        let env_error =
            |variable: &str, reason: String| Error::Environment { variable: variable.to_string(), reason };
        let required = |variable: &str| match lookup(variable) {
            Some(value) if !value.is_empty() => Ok(value),
            _ => Err(env_error(variable, "is not set".to_string())),
        };
        let project = required("SKYFORM_PROJECT")?;
        let stack = required("SKYFORM_STACK")?;
        let target = match lookup("SKYFORM_PROVIDER").filter(|p| !p.is_empty()) {
            None => Target::Local,
            Some(name) => Target::parse(&name).ok_or_else(|| {
                env_error(
                    "SKYFORM_PROVIDER",
                    format!("names `{name}`, a provider this SDK has no components for (expected `local` or `aws`)"),
                )
            })?,
        };
        let config = match lookup("SKYFORM_CONFIG").filter(|c| !c.trim().is_empty()) {
            None => Value::Object(Map::new()),
            Some(text) => match serde_json::from_str::<Value>(&text) {
                Ok(value @ Value::Object(_)) => value,
                Ok(other) => {
                    return Err(env_error("SKYFORM_CONFIG", format!("must be a JSON object, not {other}")));
                }
                Err(e) => return Err(env_error("SKYFORM_CONFIG", format!("is not valid JSON ({e})"))),
            },
        };
        let program = Program::new(project, stack, target, config);
        Ok(match lookup("SKYFORM_PROJECT_DIR").filter(|d| !d.is_empty()) {
            Some(dir) => program.with_project_dir(dir),
            None => program,
        })
    }

    /// The project's name (`name` in `Skyform.toml`).
    pub fn project(&self) -> &str {
        &self.shared.project
    }

    /// The stack being deployed, e.g. `dev`.
    pub fn stack(&self) -> &str {
        &self.shared.stack
    }

    /// The provider the stack deploys to.
    pub fn target(&self) -> Target {
        self.shared.target
    }

    /// The project folder, when `skyform` passed it.
    pub fn project_dir(&self) -> Option<&Path> {
        self.shared.project_dir.as_deref()
    }

    /// The stack's config value for `key` (a top-level key of the `[config]` table), read as a
    /// `T`; `Ok(None)` when the stack does not set it, an error when it has another type.
    ///
    /// ```
    /// # use skyform_sdk::{Program, Target};
    /// let ctx = Program::new("shop", "dev", Target::Local, serde_json::json!({"memory": 256}));
    /// let memory: u32 = ctx.config("memory").unwrap().unwrap_or(128);
    /// assert_eq!(memory, 256);
    /// ```
    pub fn config<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        let Some(value) = self.shared.config.get(key) else { return Ok(None) };
        serde_json::from_value(value.clone()).map(Some).map_err(|e| Error::InvalidConfig {
            key: key.to_string(),
            reason: format!("{e} (the value is {value})"),
        })
    }

    /// Like [`Program::config`], but a missing key is an error that tells the user which file to
    /// edit.
    pub fn require_config<T: DeserializeOwned>(&self, key: &str) -> Result<T, Error> {
        self.config(key)?
            .ok_or_else(|| Error::MissingConfig { key: key.to_string(), stack: self.shared.stack.clone() })
    }

    /// Declares a resource of any type: the escape hatch for types the SDK has no typed API for.
    ///
    /// `inputs` is any JSON, usually built with `serde_json::json!`, and may contain
    /// [`Ref`](crate::Ref)s, interpolations and secrets. The type token is `provider:Type` or
    /// `provider:module:Type`; the engine checks it, and the names, when it reads the manifest.
    ///
    /// ```
    /// # use skyform_sdk::{Program, ResourceOptions, Target};
    /// # let ctx = Program::new("shop", "dev", Target::Local, serde_json::json!({}));
    /// let seed = ctx.resource("seed", "core:Data", serde_json::json!({"value": 42}));
    /// let copy = ctx
    ///     .resource("copy", "core:Data", serde_json::json!({"value": seed.output("value")}))
    ///     .options(ResourceOptions::new().protect(true));
    /// ```
    pub fn resource(&self, name: impl Into<String>, type_: impl Into<String>, inputs: Value) -> Resource {
        self.register(name.into(), type_.into(), inputs, ResourceOptions::default())
    }

    /// Declares a typed resource, such as [`core::Data`](crate::core::Data), and returns its
    /// typed handle.
    pub fn declare<R: ResourceType>(&self, name: impl Into<String>, args: R) -> R::Handle {
        let resource = self.resource(name, R::TYPE, args.inputs());
        R::Handle::from(resource)
    }

    /// Declares a component (a [`Function`](crate::Function), an [`HttpApi`](crate::HttpApi),
    /// ...) and expands it into the resources of the stack's target.
    pub fn add<C: Component>(&self, component: C) -> Result<C::Handle, Error> {
        component.add_to(self)
    }

    /// Declares a component of your own, to group resources in the tree `skyform` displays; pass
    /// it to [`ResourceOptions::parent`] of its resources.
    pub fn component(&self, name: impl Into<String>, type_: impl Into<String>) -> ComponentRef {
        let name = name.into();
        let index = self.register_component(name.clone(), type_.into(), None);
        ComponentRef::new(name, index, self.clone())
    }

    /// Exports a stack output (`skyform outputs NAME`). The value may be literal JSON, a
    /// [`Ref`](crate::Ref), an interpolation or a secret. Exporting a name twice keeps the last.
    pub fn export(&self, name: impl Into<String>, value: impl Into<Value>) {
        self.shared.records.borrow_mut().outputs.insert(name.into(), value.into());
    }

    /// The manifest (format v1) of everything declared so far.
    pub fn manifest(&self) -> Value {
        let records = self.shared.records.borrow();
        // Serialising these structs cannot fail: every map key is a string.
        serde_json::to_value(manifest::build(self.project(), self.stack(), &records)).unwrap_or_default()
    }

    /// [`Program::manifest`] as pretty-printed JSON, what `run` prints.
    pub fn to_json(&self) -> String {
        let records = self.shared.records.borrow();
        serde_json::to_string_pretty(&manifest::build(self.project(), self.stack(), &records))
            .unwrap_or_default()
    }

    pub(crate) fn register(
        &self,
        name: String,
        type_: String,
        inputs: Value,
        options: ResourceOptions,
    ) -> Resource {
        let mut records = self.shared.records.borrow_mut();
        records.resources.push(ResourceRecord { name: name.clone(), type_, inputs, options });
        Resource::new(name, records.resources.len() - 1, self.clone())
    }

    pub(crate) fn register_component(&self, name: String, type_: String, parent: Option<String>) -> usize {
        let mut records = self.shared.records.borrow_mut();
        records.components.push(ComponentRecord { name, type_, parent });
        records.components.len() - 1
    }

    pub(crate) fn set_options(&self, index: usize, options: ResourceOptions) {
        if let Some(record) = self.shared.records.borrow_mut().resources.get_mut(index) {
            record.options = options;
        }
    }

    pub(crate) fn options_of(&self, index: usize) -> ResourceOptions {
        self.shared.records.borrow().resources.get(index).map(|r| r.options.clone()).unwrap_or_default()
    }

    /// Edits the inputs of the last resource declared as `name` and returns it, or `None` if
    /// there is none. Used by expansions that gather several calls into one resource (on AWS, all
    /// of a bucket's notifications form one `aws:s3:BucketNotification`).
    pub(crate) fn update_inputs(&self, name: &str, edit: impl FnOnce(&mut Value)) -> Option<Resource> {
        let mut records = self.shared.records.borrow_mut();
        let index = records.resources.iter().rposition(|r| r.name == name)?;
        edit(&mut records.resources[index].inputs);
        Some(Resource::new(name.to_string(), index, self.clone()))
    }

    pub(crate) fn set_component_parent(&self, index: usize, parent: Option<String>) {
        if let Some(record) = self.shared.records.borrow_mut().components.get_mut(index) {
            record.parent = parent;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn reads_the_environment() {
        let ctx = Program::from_lookup(lookup(&[
            ("SKYFORM_PROJECT", "shop"),
            ("SKYFORM_STACK", "prod"),
            ("SKYFORM_PROVIDER", "aws"),
            ("SKYFORM_CONFIG", r#"{"region":"eu-west-1"}"#),
            ("SKYFORM_PROJECT_DIR", "/src/shop"),
        ]))
        .unwrap();
        assert_eq!((ctx.project(), ctx.stack(), ctx.target()), ("shop", "prod", Target::Aws));
        assert_eq!(ctx.require_config::<String>("region").unwrap(), "eu-west-1");
        assert_eq!(ctx.project_dir(), Some(Path::new("/src/shop")));
    }

    #[test]
    fn defaults_to_local_and_empty_config() {
        let ctx =
            Program::from_lookup(lookup(&[("SKYFORM_PROJECT", "p"), ("SKYFORM_STACK", "dev")])).unwrap();
        assert_eq!(ctx.target(), Target::Local);
        assert_eq!(ctx.config::<String>("x").unwrap(), None);
        assert_eq!(ctx.project_dir(), None);
    }

    #[test]
    fn environment_errors_name_the_variable() {
        let err = Program::from_lookup(lookup(&[("SKYFORM_PROJECT", "p")])).unwrap_err();
        assert!(matches!(&err, Error::Environment { variable, .. } if variable == "SKYFORM_STACK"), "{err}");
        let base = [("SKYFORM_PROJECT", "p"), ("SKYFORM_STACK", "dev")];
        let err = Program::from_lookup(lookup(&[base[0], base[1], ("SKYFORM_PROVIDER", "gcp")])).unwrap_err();
        assert!(err.to_string().contains("`gcp`"), "{err}");
        let err = Program::from_lookup(lookup(&[base[0], base[1], ("SKYFORM_CONFIG", "[1]")])).unwrap_err();
        assert!(err.to_string().contains("must be a JSON object"), "{err}");
        let err = Program::from_lookup(lookup(&[base[0], base[1], ("SKYFORM_CONFIG", "{")])).unwrap_err();
        assert!(err.to_string().contains("not valid JSON"), "{err}");
    }

    #[test]
    fn config_errors_say_what_to_do() {
        let ctx = Program::new("p", "dev", Target::Local, json!({"memory": "lots"}));
        let err = ctx.require_config::<u32>("timeout").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the config key `timeout` is required but stack `dev` does not set it; add `timeout = ...` \
             to the `[config]` table of Skyform.dev.toml"
        );
        let err = ctx.config::<u32>("memory").unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { .. }), "{err}");
        // A config that is not an object is treated as empty rather than panicking.
        let ctx = Program::new("p", "dev", Target::Local, json!([1]));
        assert_eq!(ctx.config::<u32>("memory").unwrap(), None);
    }
}
