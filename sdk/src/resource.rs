//! Handles to declared resources.
//!
//! A [`Resource`] is what the program holds after declaring a resource: its name, a way to refer
//! to its outputs, and a way to set its options. It is not the resource itself, which does not
//! exist yet when the program runs.

use std::fmt;

use serde_json::Value;

use crate::options::{Dependency, Named, ResourceOptions};
use crate::{Program, Ref};

/// A declared resource. Cloning it is cheap and yields another handle to the same resource.
#[derive(Clone)]
pub struct Resource {
    name: String,
    index: usize,
    program: Program,
}

impl fmt::Debug for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Resource").field(&self.name).finish()
    }
}

impl Resource {
    pub(crate) fn new(name: String, index: usize, program: Program) -> Resource {
        Resource { name, index, program }
    }

    /// The resource's logical name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A reference to one of its outputs (`{"$ref": NAME, "output": PROP}`); `prop` may be a
    /// dotted path into a structured output.
    pub fn output(&self, prop: impl Into<String>) -> Ref {
        Ref::new(self.name.clone(), prop)
    }

    /// A reference to its provider id (`{"$ref": NAME}`).
    pub fn id(&self) -> Ref {
        Ref::id(self.name.clone())
    }

    /// Sets its options, replacing any set before.
    pub fn options(self, options: ResourceOptions) -> Self {
        self.program.set_options(self.index, options);
        self
    }

    /// Its current options.
    pub fn current_options(&self) -> ResourceOptions {
        self.program.options_of(self.index)
    }
}

impl Dependency for Resource {
    fn dependency_names(&self) -> Vec<String> {
        vec![self.name.clone()]
    }
}

impl Named for Resource {
    fn name(&self) -> &str {
        &self.name
    }
}

/// A resource type with typed inputs, declared with [`Program::declare`].
///
/// Implement it to give a provider's types a typed API in your own crate:
///
/// ```
/// use serde_json::{Value, json};
/// use skyform_sdk::{Program, Resource, ResourceType, Target};
///
/// struct Dns { zone: String }
/// struct DnsHandle(Resource);
/// impl From<Resource> for DnsHandle {
///     fn from(r: Resource) -> Self { DnsHandle(r) }
/// }
/// impl ResourceType for Dns {
///     const TYPE: &'static str = "acme:Dns";
///     type Handle = DnsHandle;
///     fn inputs(&self) -> Value { json!({"zone": self.zone}) }
/// }
///
/// let ctx = Program::new("p", "dev", Target::Local, json!({}));
/// let _dns = ctx.declare("dns", Dns { zone: "example.com".into() });
/// ```
pub trait ResourceType {
    /// The type token, `provider:Type`.
    const TYPE: &'static str;
    /// What `declare` returns: usually a newtype around [`Resource`] with typed output accessors.
    type Handle: From<Resource>;
    /// The manifest inputs.
    fn inputs(&self) -> Value;
}
