//! The `Bucket` component: object storage with S3 semantics (the local cloud answers the S3
//! wire API), and functions notified of object events.
//!
//! Notifications are resources of their own, for the reason given in [`queue`](crate::queue):
//! a function that processes uploads usually needs the bucket's name.

use crate::component::{Component, Expansion, component_handle};
use crate::{Error, FunctionHandle, Program, Ref, ResourceOptions, Subscription, Target, aws, local};

/// A bucket, described with a builder and declared with [`Program::add`]:
///
/// ```
/// use skyform_sdk::{Bucket, Program, Target};
/// let ctx = Program::new("p", "dev", Target::Local, serde_json::json!({}));
/// let uploads = ctx.add(Bucket::new("uploads").versioning(true)).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct Bucket {
    pub(crate) name: String,
    pub(crate) versioning: bool,
    pub(crate) force_destroy: bool,
    pub(crate) options: ResourceOptions,
}

impl Bucket {
    /// A private bucket without versioning.
    pub fn new(name: impl Into<String>) -> Bucket {
        Bucket {
            name: name.into(),
            versioning: false,
            force_destroy: false,
            options: ResourceOptions::default(),
        }
    }

    /// Keeps every version of every object.
    pub fn versioning(mut self, on: bool) -> Self {
        self.versioning = on;
        self
    }

    /// Lets `skyform destroy` delete the bucket while it still holds objects (otherwise deleting
    /// a non-empty bucket fails, which protects data).
    pub fn force_destroy(mut self, on: bool) -> Self {
        self.force_destroy = on;
        self
    }

    /// Options applied to every resource of the bucket; `parent` nests the component.
    pub fn options(mut self, options: ResourceOptions) -> Self {
        self.options = options;
        self
    }
}

impl Component for Bucket {
    type Handle = BucketHandle;

    fn add_to(self, ctx: &Program) -> Result<BucketHandle, Error> {
        let expansion = match ctx.target() {
            Target::Local => local::bucket(ctx, &self),
            Target::Aws => aws::bucket(ctx, &self)?,
        };
        Ok(BucketHandle { expansion, program: ctx.clone() })
    }
}

/// Which object events a notification delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectEvent {
    /// `s3:ObjectCreated:*`: puts, posts, copies, completed multipart uploads.
    Created,
    /// `s3:ObjectRemoved:*`: deletes.
    Removed,
}

impl ObjectEvent {
    /// The S3 event pattern.
    pub fn as_str(&self) -> &'static str {
        match self {
            ObjectEvent::Created => "s3:ObjectCreated:*",
            ObjectEvent::Removed => "s3:ObjectRemoved:*",
        }
    }

    /// The word used in the notification resource's name.
    pub(crate) fn word(&self) -> &'static str {
        match self {
            ObjectEvent::Created => "created",
            ObjectEvent::Removed => "removed",
        }
    }
}

/// A bucket notification: an event and optional key filters.
///
/// ```
/// use skyform_sdk::{Notification, ObjectEvent};
/// let jpegs = Notification::new(ObjectEvent::Created).prefix("photos/").suffix(".jpg");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub(crate) event: ObjectEvent,
    pub(crate) prefix: Option<String>,
    pub(crate) suffix: Option<String>,
}

impl Notification {
    /// Every object of the bucket, for `event`.
    pub fn new(event: ObjectEvent) -> Notification {
        Notification { event, prefix: None, suffix: None }
    }

    /// Only keys starting with `prefix`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Only keys ending with `suffix`.
    pub fn suffix(mut self, suffix: impl Into<String>) -> Self {
        self.suffix = Some(suffix.into());
        self
    }
}

/// A declared [`Bucket`].
#[derive(Debug, Clone)]
pub struct BucketHandle {
    pub(crate) expansion: Expansion,
    pub(crate) program: Program,
}
component_handle!(BucketHandle);

impl BucketHandle {
    /// The bucket's physical name, what S3 clients pass as `Bucket`.
    pub fn bucket_name(&self) -> Ref {
        self.expansion.output("bucket_name")
    }

    /// The bucket ARN.
    pub fn arn(&self) -> Ref {
        self.expansion.output("arn")
    }

    /// Invokes `function` with an S3 event for every object created.
    pub fn on_object_created(&self, function: &FunctionHandle) -> Result<Subscription, Error> {
        self.notify(function, Notification::new(ObjectEvent::Created))
    }

    /// Invokes `function` with an S3 event for every object removed.
    pub fn on_object_removed(&self, function: &FunctionHandle) -> Result<Subscription, Error> {
        self.notify(function, Notification::new(ObjectEvent::Removed))
    }

    /// Invokes `function` for the events and keys `notification` selects.
    pub fn notify(
        &self,
        function: &FunctionHandle,
        notification: Notification,
    ) -> Result<Subscription, Error> {
        let resources = match self.program.target() {
            Target::Local => local::bucket_notification(&self.program, self, function, &notification),
            Target::Aws => aws::bucket_notification(&self.program, self, function, &notification)?,
        };
        Ok(Subscription { resources })
    }
}
