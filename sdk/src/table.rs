//! The `Table` component: a key-value/document table with DynamoDB semantics (a hash key and an
//! optional range key; other attributes are schemaless).

use crate::component::{Component, Expansion, component_handle};
use crate::function::FunctionHandle;
use crate::queue::Subscription;
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

/// A global secondary index: another key to query the table by.
#[derive(Debug, Clone)]
pub struct Index {
    pub(crate) name: String,
    pub(crate) hash_key: (String, KeyType),
    pub(crate) range_key: Option<(String, KeyType)>,
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
    pub(crate) indexes: Vec<Index>,
    pub(crate) options: ResourceOptions,
}

impl Table {
    /// A table; give it a [`hash_key`](Table::hash_key) before adding it.
    pub fn new(name: impl Into<String>) -> Table {
        Table {
            name: name.into(),
            hash_key: None,
            range_key: None,
            indexes: Vec::new(),
            options: ResourceOptions::default(),
        }
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

    /// A global secondary index `name` keyed by `hash` (and `range`): `Query` with `IndexName`
    /// finds items by these attributes. Items without them are not in the index (a sparse
    /// index); every attribute is projected.
    ///
    /// ```
    /// use skyform_sdk::{KeyType, Table};
    /// let users = Table::new("users")
    ///     .hash_key("id", KeyType::String)
    ///     .index("byEmail", ("email", KeyType::String), None)
    ///     .index("byTeam", ("team", KeyType::String), Some(("joined", KeyType::Number)));
    /// ```
    pub fn index(
        mut self,
        name: impl Into<String>,
        hash: (&str, KeyType),
        range: Option<(&str, KeyType)>,
    ) -> Self {
        self.indexes.push(Index {
            name: name.into(),
            hash_key: (hash.0.to_string(), hash.1),
            range_key: range.map(|(n, t)| (n.to_string(), t)),
        });
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
        }?;
        if self.indexes.len() > 20 {
            return Err(Error::invalid(&self.name, "a table has at most 20 indexes"));
        }
        // One type per attribute, across the table's keys and its indexes' keys.
        let mut types: Vec<(&str, KeyType)> = Vec::new();
        let mut keys: Vec<&(String, KeyType)> = self.hash_key.iter().chain(self.range_key.iter()).collect();
        let mut names = std::collections::HashSet::new();
        for ix in &self.indexes {
            let ok = (3..=255).contains(&ix.name.len())
                && ix.name.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'));
            if !ok {
                return Err(Error::invalid(
                    &self.name,
                    format!(
                        "index name `{}` must be 3 to 255 characters of letters, digits, `_`, `-` and `.`",
                        ix.name
                    ),
                ));
            }
            if !names.insert(ix.name.as_str()) {
                return Err(Error::invalid(&self.name, format!("index `{}` is declared twice", ix.name)));
            }
            if ix.hash_key.0.is_empty() || ix.range_key.as_ref().is_some_and(|r| r.0.is_empty()) {
                return Err(Error::invalid(
                    &self.name,
                    format!("a key of index `{}` has an empty name", ix.name),
                ));
            }
            keys.push(&ix.hash_key);
            keys.extend(ix.range_key.iter());
        }
        for (n, t) in keys {
            match types.iter().find(|(m, _)| m == n) {
                Some((_, u)) if u != t => {
                    return Err(Error::invalid(
                        &self.name,
                        format!(
                            "attribute `{n}` is a key with two types ({} and {})",
                            u.as_str(),
                            t.as_str()
                        ),
                    ));
                }
                Some(_) => {}
                None => types.push((n, *t)),
            }
        }
        Ok(())
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
        Ok(TableHandle { expansion, program: ctx.clone() })
    }
}

/// A declared [`Table`].
#[derive(Debug, Clone)]
pub struct TableHandle {
    pub(crate) expansion: Expansion,
    pub(crate) program: Program,
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

    /// The ARN of the table's change stream (DynamoDB Streams).
    pub fn stream_arn(&self) -> Ref {
        self.expansion.output("stream_arn")
    }

    /// Invokes `function` with the table's changes, in batches of up to 100 records in DynamoDB
    /// Streams' event format (`INSERT`, `MODIFY`, `REMOVE`, with keys and the new and old
    /// images), in order for each item; a failed batch is retried until it succeeds.
    pub fn on_change(&self, function: &FunctionHandle) -> Result<Subscription, Error> {
        self.on_change_with_batch_size(function, DEFAULT_CHANGE_BATCH)
    }

    /// [`TableHandle::on_change`] with up to `batch_size` records per invocation (1 to 10000).
    pub fn on_change_with_batch_size(
        &self,
        function: &FunctionHandle,
        batch_size: u32,
    ) -> Result<Subscription, Error> {
        if !(1..=10_000).contains(&batch_size) {
            return Err(Error::invalid(
                self.name(),
                format!(
                    "the batch size of the change trigger of `{}` must be 1 to 10000, not {batch_size}",
                    function.name()
                ),
            ));
        }
        let resources = match self.program.target() {
            Target::Local => local::table_subscription(&self.program, self, function, batch_size),
            Target::Aws => aws::table_subscription(&self.program, self, function, batch_size)?,
        };
        Ok(Subscription { resources })
    }
}

/// Lambda's default batch size for a DynamoDB stream.
pub(crate) const DEFAULT_CHANGE_BATCH: u32 = 100;
