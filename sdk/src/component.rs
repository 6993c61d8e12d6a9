//! Components: provider-agnostic building blocks that expand into provider resources.
//!
//! A component such as [`Function`](crate::Function) says *what* the user wants; which
//! resources implement it depends on the stack's target (one `local:Function` on the local cloud;
//! a role, a function and a log group on AWS). Each component's module validates the user's
//! description and then hands it to `local.rs` or `aws.rs`, which declare the resources with
//! their `parent` set to the component. The manifest lists the component itself under
//! `components`, for the tree that `skyform` displays.
//!
//! **Invariant:** a component's output accessors (`url()`, `function_name()`, ...) name the same
//! output on every target. Expansions must pick a main resource that exposes them.

use std::fmt;

use serde_json::Value;

use crate::options::{Dependency, Named, ResourceOptions};
use crate::{Error, Program, Ref, Resource};

/// Something [`Program::add`] can declare.
pub trait Component {
    /// What `add` returns: a handle to refer to the component's outputs.
    type Handle;
    /// Validates the component and declares its resources for `ctx.target()`.
    fn add_to(self, ctx: &Program) -> Result<Self::Handle, Error>;
}

/// A component declared with [`Program::component`], to group your own resources.
#[derive(Clone)]
pub struct ComponentRef {
    name: String,
    index: usize,
    program: Program,
}

impl fmt::Debug for ComponentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ComponentRef").field(&self.name).finish()
    }
}

impl ComponentRef {
    pub(crate) fn new(name: String, index: usize, program: Program) -> ComponentRef {
        ComponentRef { name, index, program }
    }

    /// The component's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Nests this component under another one.
    pub fn parent(self, parent: impl Named) -> Self {
        self.program.set_component_parent(self.index, Some(parent.name().to_string()));
        self
    }
}

impl Named for ComponentRef {
    fn name(&self) -> &str {
        &self.name
    }
}

/// What a built-in component expanded into: the component's name, the resource that carries its
/// outputs, and all of its resources (for `depends_on`). Shared by all component handles.
#[derive(Debug, Clone)]
pub(crate) struct Expansion {
    pub component: String,
    pub main: String,
    pub resources: Vec<String>,
    /// Accessor outputs that this target exposes under another name or on another resource
    /// (`function_name` is the `name` output of an `aws:lambda:Function`; an AWS API's `url` is
    /// its stage's `invoke_url`). Empty on `local`, whose main resources expose every accessor.
    pub renamed: Vec<(&'static str, Ref)>,
}

impl Expansion {
    pub fn output(&self, prop: &str) -> Ref {
        match self.renamed.iter().find(|(accessor, _)| *accessor == prop) {
            Some((_, target)) => target.clone(),
            None => Ref::new(self.main.clone(), prop),
        }
    }
}

/// Declares a built-in component and returns the helper its expansion uses to add children.
pub(crate) fn begin(ctx: &Program, name: &str, type_: &str, options: &ResourceOptions) -> Children {
    ctx.register_component(name.to_string(), type_.to_string(), options.parent.clone());
    let mut child_options = options.clone();
    child_options.parent = Some(name.to_string());
    Children {
        program: ctx.clone(),
        component: name.to_string(),
        options: child_options,
        resources: Vec::new(),
    }
}

/// Declares the resources of one component, all with the component's options and `parent`.
pub(crate) struct Children {
    program: Program,
    component: String,
    options: ResourceOptions,
    resources: Vec<String>,
}

impl Children {
    pub fn add(&mut self, name: impl Into<String>, type_: &str, inputs: Value) -> Resource {
        let resource = self.program.register(name.into(), type_.to_string(), inputs, self.options.clone());
        self.resources.push(resource.name().to_string());
        resource
    }

    /// Finishes the expansion, naming the resource that carries the component's outputs.
    pub fn finish(self, main: &Resource) -> Expansion {
        Expansion {
            component: self.component,
            main: main.name().to_string(),
            resources: self.resources,
            renamed: Vec::new(),
        }
    }
}

/// Implements the traits every built-in component handle shares.
macro_rules! component_handle {
    ($handle:ident) => {
        impl $handle {
            /// The component's name.
            pub fn name(&self) -> &str {
                &self.expansion.component
            }

            /// A reference to an output of the component's main resource. Prefer the typed
            /// accessors: other outputs may differ between targets.
            pub fn output(&self, prop: &str) -> $crate::Ref {
                self.expansion.output(prop)
            }

            /// A reference to the provider id of the component's main resource.
            pub fn id(&self) -> $crate::Ref {
                $crate::Ref::id(self.expansion.main.clone())
            }

            /// The names of the resources the component expanded into.
            pub fn resources(&self) -> &[String] {
                &self.expansion.resources
            }
        }

        impl $crate::Dependency for $handle {
            fn dependency_names(&self) -> Vec<String> {
                self.expansion.resources.clone()
            }
        }

        impl $crate::Named for $handle {
            fn name(&self) -> &str {
                &self.expansion.component
            }
        }
    };
}
pub(crate) use component_handle;

impl Dependency for Expansion {
    fn dependency_names(&self) -> Vec<String> {
        self.resources.clone()
    }
}
