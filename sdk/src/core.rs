//! Typed resources of the `core` provider, which needs no cloud and works on every target.
//!
//! ```
//! use serde_json::json;
//! use skyform_sdk::{Program, Target, core};
//!
//! let ctx = Program::new("p", "dev", Target::Local, json!({}));
//! let version = ctx.declare("version", core::Data { value: json!("1.4.2"), ..Default::default() });
//! let build = ctx.declare("build", core::Command {
//!     create: "make dist".into(),
//!     triggers: version.value().into(),
//!     ..Default::default()
//! });
//! ctx.export("build_log", build.stdout());
//! ```

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::{Dependency, Named, Ref, Resource, ResourceOptions, ResourceType};

/// `core:Data`: a value kept in state (like Terraform's `terraform_data`). A change of `value`
/// updates it in place; a change of `triggers` replaces it, and with it every resource whose
/// inputs refer to it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Data {
    /// Any JSON value; copied to the output `value`.
    pub value: Value,
    /// Any JSON value; a change replaces the resource.
    pub triggers: Value,
}

impl ResourceType for Data {
    const TYPE: &'static str = "core:Data";
    type Handle = DataHandle;

    fn inputs(&self) -> Value {
        let mut map = Map::new();
        map.insert("value".into(), self.value.clone());
        map.insert("triggers".into(), self.triggers.clone());
        Value::Object(map)
    }
}

/// `core:Command`: shell commands (`sh -c`) run on create, update and delete, in `dir` relative
/// to the project folder. A change of `create`, `dir` or `triggers` replaces it; a change of
/// `update` or `environment` reruns `update` (or `create`) in place.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Command {
    /// The command run on create (required).
    pub create: String,
    /// The command run on an in-place update; `create` runs again when absent.
    pub update: Option<String>,
    /// The command run on delete; nothing runs when absent.
    pub delete: Option<String>,
    /// The working directory, relative to the project folder.
    pub dir: Option<String>,
    /// Environment variables added to the command's environment; values are strings or
    /// references to string outputs.
    pub environment: BTreeMap<String, Value>,
    /// Any JSON value; a change replaces the resource.
    pub triggers: Value,
}

impl ResourceType for Command {
    const TYPE: &'static str = "core:Command";
    type Handle = CommandHandle;

    /// Absent optional inputs are left out rather than written as `null`, so that the manifest
    /// says only what the program said.
    fn inputs(&self) -> Value {
        let mut map = Map::new();
        map.insert("create".into(), Value::String(self.create.clone()));
        for (key, value) in [("update", &self.update), ("delete", &self.delete), ("dir", &self.dir)] {
            if let Some(value) = value {
                map.insert(key.into(), Value::String(value.clone()));
            }
        }
        if !self.environment.is_empty() {
            let env = self.environment.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            map.insert("environment".into(), Value::Object(env));
        }
        if !self.triggers.is_null() {
            map.insert("triggers".into(), self.triggers.clone());
        }
        Value::Object(map)
    }
}

macro_rules! typed_handle {
    ($handle:ident) => {
        impl From<Resource> for $handle {
            fn from(resource: Resource) -> Self {
                $handle(resource)
            }
        }

        impl $handle {
            /// The untyped handle, for any output by name and for [`Resource::id`].
            pub fn resource(&self) -> &Resource {
                &self.0
            }

            /// Sets its options, replacing any set before.
            pub fn options(self, options: ResourceOptions) -> Self {
                $handle(self.0.options(options))
            }
        }

        impl Dependency for $handle {
            fn dependency_names(&self) -> Vec<String> {
                self.0.dependency_names()
            }
        }

        impl Named for $handle {
            fn name(&self) -> &str {
                self.0.name()
            }
        }
    };
}

/// A declared [`Data`].
#[derive(Debug, Clone)]
pub struct DataHandle(Resource);
typed_handle!(DataHandle);

impl DataHandle {
    /// The output `value`.
    pub fn value(&self) -> Ref {
        self.0.output("value")
    }
}

/// A declared [`Command`].
#[derive(Debug, Clone)]
pub struct CommandHandle(Resource);
typed_handle!(CommandHandle);

impl CommandHandle {
    /// What the last `create` or `update` printed, trailing whitespace trimmed.
    pub fn stdout(&self) -> Ref {
        self.0.output("stdout")
    }

    /// What it printed to stderr, trailing whitespace trimmed.
    pub fn stderr(&self) -> Ref {
        self.0.output("stderr")
    }

    /// Its exit status (0, since a failure fails the step).
    pub fn exit_code(&self) -> Ref {
        self.0.output("exit_code")
    }
}
