//! The `Table` component: a key-value/document table with DynamoDB semantics (a hash key and an
//! optional range key; other attributes are schemaless).

use crate::component::{Component, Expansion, component_handle};
use crate::{Error, Program, Ref, ResourceOptions, Target, aws, local};

/// The type of a key attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// A string (`S`).
    String,
    /// A number (`N`).
    Number,
    /// Binary data (`B`).
    Binary,
}

impl KeyType {
    /// The name written in the manifest: `string`, `number` or `binary`.
    pub fn as_str(&self) -> &'static str {
        match self {
            KeyType::String => "string",
            KeyType::Number => "number",
            KeyType::Binary => "binary",
        }
    }
}

/// A table, described with a builder and declared with [`Program::add`]:
///
/// ```
/// use skyform_sdk::{KeyType, Program, Table, Target};
/// let ctx = Program::new("p", "dev", Target::Local, serde_json::json!({}));
/// let orders = ctx.add(Table::new("orders").hash_key("customer", KeyType::String).range_key("placed_at", KeyType::Number)).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct Table {
    pub(crate) name: String,
    pub(crate) hash_key: Option<(String, KeyType)>,
    pub(crate) range_key: Option<(String, KeyType)>,
    pub(crate) options: ResourceOptions,
}

impl Table {
    /// A table; give it a [`hash_key`](Table::hash_key) before adding it.
    pub fn new(name: impl Into<String>) -> Table {
        Table { name: name.into(), hash_key: None, range_key: None, options: ResourceOptions::default() }
    }

    /// The partition key (required).
    pub fn hash_key(mut self, attribute: impl Into<String>, type_: KeyType) -> Self {
        self.hash_key = Some((attribute.into(), type_));
        self
    }

    /// The sort key (optional).
    pub fn range_key(mut self, attribute: impl Into<String>, type_: KeyType) -> Self {
        self.range_key = Some((attribute.into(), type_));
        self
    }

    /// Options applied to every resource of the table; `parent` nests the component. Tables hold
    /// data, so `ResourceOptions::new().protect(true)` is often wise for production stacks.
    pub fn options(mut self, options: ResourceOptions) -> Self {
        self.options = options;
        self
    }

    fn validate(&self) -> Result<(), Error> {
        match (&self.hash_key, &self.range_key) {
            (None, _) => Err(Error::invalid(
                &self.name,
                "the table has no hash key: call `.hash_key(\"id\", KeyType::String)`",
            )),
            (Some((h, _)), _) if h.is_empty() => {
                Err(Error::invalid(&self.name, "the hash key's name is empty"))
            }
            (Some((h, _)), Some((r, _))) if r == h => {
                Err(Error::invalid(&self.name, format!("the range key `{r}` is also the hash key")))
            }
            (_, Some((r, _))) if r.is_empty() => {
                Err(Error::invalid(&self.name, "the range key's name is empty"))
            }
            _ => Ok(()),
        }
    }
}

impl Component for Table {
    type Handle = TableHandle;

    fn add_to(self, ctx: &Program) -> Result<TableHandle, Error> {
        self.validate()?;
        let expansion = match ctx.target() {
            Target::Local => local::table(ctx, &self),
            Target::Aws => aws::table(ctx, &self)?,
        };
        Ok(TableHandle { expansion })
    }
}

/// A declared [`Table`].
#[derive(Debug, Clone)]
pub struct TableHandle {
    pub(crate) expansion: Expansion,
}
component_handle!(TableHandle);

impl TableHandle {
    /// The table's physical name, what DynamoDB clients pass as `TableName`.
    pub fn table_name(&self) -> Ref {
        self.expansion.output("table_name")
    }

    /// The table ARN.
    pub fn arn(&self) -> Ref {
        self.expansion.output("arn")
    }
}
