//! Resource options: how the engine treats a resource over its lifetime, as opposed to its
//! inputs, which say what the resource is.
//!
//! Options are recorded in state with the resource, so they keep applying on later runs (a
//! `protect`ed resource stays protected even if a later program version forgets it, until the
//! option is turned off and applied). The manifest carries only the options that differ from
//! their defaults.

use serde_json::{Map, Value};

/// Anything that names one or more resources a resource can wait for: a resource name
/// (`"db"`), a [`Resource`](crate::Resource) handle, a [`Ref`](crate::Ref) (its resource), or a
/// component handle (all of its resources).
pub trait Dependency {
    /// The names of the resources to wait for.
    fn dependency_names(&self) -> Vec<String>;
}

impl Dependency for str {
    fn dependency_names(&self) -> Vec<String> {
        vec![self.to_string()]
    }
}
impl Dependency for String {
    fn dependency_names(&self) -> Vec<String> {
        vec![self.clone()]
    }
}
impl Dependency for crate::Ref {
    fn dependency_names(&self) -> Vec<String> {
        vec![self.resource().to_string()]
    }
}
impl<T: Dependency + ?Sized> Dependency for &T {
    fn dependency_names(&self) -> Vec<String> {
        (**self).dependency_names()
    }
}

/// Anything with a name that can be a parent: a component handle or a name.
pub trait Named {
    /// The logical name.
    fn name(&self) -> &str;
}
impl Named for str {
    fn name(&self) -> &str {
        self
    }
}
impl Named for String {
    fn name(&self) -> &str {
        self
    }
}
impl<T: Named + ?Sized> Named for &T {
    fn name(&self) -> &str {
        (**self).name()
    }
}

/// Lifecycle options of a resource, built fluently:
///
/// ```
/// use skyform_sdk::ResourceOptions;
/// let opts = ResourceOptions::new().protect(true).ignore_changes(["tags"]).aliases(["old-name"]);
/// ```
///
/// Passed to [`Resource::options`](crate::Resource::options) for a generic resource, or to a
/// component's `.options(..)`, which applies them to every resource the component expands into.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceOptions {
    pub(crate) depends_on: Vec<String>,
    pub(crate) protect: bool,
    pub(crate) ignore_changes: Vec<String>,
    pub(crate) replace_on_changes: Vec<String>,
    pub(crate) delete_before_replace: bool,
    pub(crate) retain_on_delete: bool,
    pub(crate) aliases: Vec<String>,
    pub(crate) parent: Option<String>,
    /// Tags for the AWS resources a component expands into (not an engine option: they become
    /// each taggable resource's `tags` input).
    pub(crate) tags: std::collections::BTreeMap<String, String>,
}

impl ResourceOptions {
    /// All defaults: no extra dependencies, not protected, create-before-delete replacement.
    pub fn new() -> ResourceOptions {
        ResourceOptions::default()
    }

    /// Waits for `dependency` to be created or updated first, although no input refers to it.
    /// (References already imply this; use it for side effects the engine cannot see.) May be
    /// called several times.
    pub fn depends_on(mut self, dependency: impl Dependency) -> Self {
        for name in dependency.dependency_names() {
            if !self.depends_on.contains(&name) {
                self.depends_on.push(name);
            }
        }
        self
    }

    /// Refuses to delete or replace the resource; `skyform` stops with an error instead. Turn it
    /// off and apply before destroying the resource on purpose.
    pub fn protect(mut self, protect: bool) -> Self {
        self.protect = protect;
        self
    }

    /// Top-level input properties whose changes are ignored when diffing (e.g. a value another
    /// system edits).
    pub fn ignore_changes<I, S>(mut self, properties: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.ignore_changes.extend(properties.into_iter().map(Into::into));
        self
    }

    /// Top-level input properties whose changes force a replacement even where the provider
    /// would update in place.
    pub fn replace_on_changes<I, S>(mut self, properties: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.replace_on_changes.extend(properties.into_iter().map(Into::into));
        self
    }

    /// On replacement, deletes the old resource before creating the new one (needed when both
    /// cannot exist at once, e.g. a fixed physical name).
    pub fn delete_before_replace(mut self, yes: bool) -> Self {
        self.delete_before_replace = yes;
        self
    }

    /// When the resource leaves the program (or on destroy), forgets it from state instead of
    /// deleting the real thing.
    pub fn retain_on_delete(mut self, yes: bool) -> Self {
        self.retain_on_delete = yes;
        self
    }

    /// Tags for every taggable AWS resource a component expands into (its role, function, log
    /// group, queue, topic, API, bucket, table), over the stack's default `tags` under
    /// `[providers.aws]`, for cost allocation. May be called several times. On `local` they are
    /// ignored; on a generic [`Resource`](crate::Resource), set its `tags` input instead.
    pub fn tags<I, K, V>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.tags.extend(tags.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Former names of the resource, so that renaming it in the program is not a replacement.
    pub fn aliases<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.aliases.extend(names.into_iter().map(Into::into));
        self
    }

    /// The component the resource belongs to, for the tree that `skyform` displays. It does not
    /// change what is deployed.
    pub fn parent(mut self, parent: impl Named) -> Self {
        self.parent = Some(parent.name().to_string());
        self
    }

    /// The manifest's `options` object: only the options that differ from their defaults, so
    /// that manifests stay short and adding an option later does not change existing ones.
    /// `parent` is not an option in the manifest but a field of the resource.
    pub(crate) fn to_manifest(&self) -> Value {
        let mut map = Map::new();
        let mut list = |key: &str, items: &[String]| {
            if !items.is_empty() {
                map.insert(key.to_string(), Value::from(items.to_vec()));
            }
        };
        list("depends_on", &self.depends_on);
        list("ignore_changes", &self.ignore_changes);
        list("replace_on_changes", &self.replace_on_changes);
        list("aliases", &self.aliases);
        for (key, flag) in [
            ("protect", self.protect),
            ("delete_before_replace", self.delete_before_replace),
            ("retain_on_delete", self.retain_on_delete),
        ] {
            if flag {
                map.insert(key.to_string(), Value::Bool(true));
            }
        }
        Value::Object(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_are_left_out() {
        assert_eq!(ResourceOptions::new().to_manifest(), json!({}));
        assert_eq!(ResourceOptions::new().parent("api").to_manifest(), json!({}));
    }

    #[test]
    fn every_option_is_encoded() {
        let opts = ResourceOptions::new()
            .depends_on("a")
            .depends_on(crate::Ref::new("b", "x"))
            .depends_on("a")
            .protect(true)
            .ignore_changes(["tags"])
            .replace_on_changes(vec!["name".to_string()])
            .delete_before_replace(true)
            .retain_on_delete(true)
            .aliases(["old"]);
        assert_eq!(
            opts.to_manifest(),
            json!({
                "depends_on": ["a", "b"],
                "protect": true,
                "ignore_changes": ["tags"],
                "replace_on_changes": ["name"],
                "delete_before_replace": true,
                "retain_on_delete": true,
                "aliases": ["old"]
            })
        );
    }
}
