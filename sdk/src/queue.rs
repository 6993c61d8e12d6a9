//! The `Queue` component: a message queue with SQS semantics (at-least-once delivery,
//! visibility timeout, optional dead-letter queue), and functions subscribed to it.
//!
//! A subscription is a resource of its own rather than an input of the queue: a worker often
//! needs the queue's URL in its environment, and the queue would then depend on the worker that
//! depends on the queue, a cycle. As separate resources, queue → worker → subscription is a line.

use crate::component::{Component, Expansion, component_handle};
use crate::{Dependency, Error, FunctionHandle, Program, Ref, ResourceOptions, Target, aws, local};

/// A queue, described with a builder and declared with [`Program::add`]:
///
/// ```
/// use skyform_sdk::{Queue, Program, Target};
/// let ctx = Program::new("p", "dev", Target::Local, serde_json::json!({}));
/// let failed = ctx.add(Queue::new("jobs-failed")).unwrap();
/// let jobs = ctx.add(Queue::new("jobs").visibility_timeout_secs(60).dead_letter(&failed, 5)).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct Queue {
    pub(crate) name: String,
    pub(crate) fifo: bool,
    pub(crate) visibility_timeout: u32,
    pub(crate) message_retention: u32,
    pub(crate) delay: u32,
    pub(crate) dead_letter: Option<(QueueHandle, u32)>,
    pub(crate) options: ResourceOptions,
}

impl Queue {
    /// A standard queue with SQS's defaults: 30 s visibility timeout, 4 days retention, no delay.
    pub fn new(name: impl Into<String>) -> Queue {
        Queue {
            name: name.into(),
            fifo: false,
            visibility_timeout: 30,
            message_retention: 345_600,
            delay: 0,
            dead_letter: None,
            options: ResourceOptions::default(),
        }
    }

    /// A FIFO queue: ordered, exactly-once processing per message group.
    pub fn fifo(mut self, fifo: bool) -> Self {
        self.fifo = fifo;
        self
    }

    /// How long a received message stays invisible to other consumers (default 30). Keep it
    /// above the timeout of subscribed functions.
    pub fn visibility_timeout_secs(mut self, secs: u32) -> Self {
        self.visibility_timeout = secs;
        self
    }

    /// How long an unconsumed message is kept (default 345600, 4 days).
    pub fn message_retention_secs(mut self, secs: u32) -> Self {
        self.message_retention = secs;
        self
    }

    /// How long a new message waits before it can be received (default 0).
    pub fn delay_secs(mut self, secs: u32) -> Self {
        self.delay = secs;
        self
    }

    /// Moves a message to `queue` after `max_receive_count` failed receives.
    pub fn dead_letter(mut self, queue: &QueueHandle, max_receive_count: u32) -> Self {
        self.dead_letter = Some((queue.clone(), max_receive_count));
        self
    }

    /// Options applied to every resource of the queue; `parent` nests the component.
    pub fn options(mut self, options: ResourceOptions) -> Self {
        self.options = options;
        self
    }
}

impl Component for Queue {
    type Handle = QueueHandle;

    fn add_to(self, ctx: &Program) -> Result<QueueHandle, Error> {
        if self.dead_letter.as_ref().is_some_and(|(_, n)| *n == 0) {
            return Err(Error::invalid(&self.name, "the dead-letter `max_receive_count` must be at least 1"));
        }
        let expansion = match ctx.target() {
            Target::Local => local::queue(ctx, &self),
            Target::Aws => aws::queue(ctx, &self)?,
        };
        Ok(QueueHandle { expansion, program: ctx.clone() })
    }
}

/// A declared [`Queue`].
#[derive(Debug, Clone)]
pub struct QueueHandle {
    pub(crate) expansion: Expansion,
    pub(crate) program: Program,
}
component_handle!(QueueHandle);

/// The default number of messages handed to one invocation, as on Lambda.
pub(crate) const DEFAULT_BATCH_SIZE: u32 = 10;

impl QueueHandle {
    /// The queue URL, for SQS clients (`QueueUrl`).
    pub fn url(&self) -> Ref {
        self.expansion.output("url")
    }

    /// The queue ARN.
    pub fn arn(&self) -> Ref {
        self.expansion.output("arn")
    }

    /// The queue's physical name.
    pub fn queue_name(&self) -> Ref {
        self.expansion.output("queue_name")
    }

    /// Invokes `function` with batches of up to 10 messages (an SQS event); messages of a batch
    /// whose invocation fails become visible again after the visibility timeout.
    pub fn subscribe(&self, function: &FunctionHandle) -> Result<Subscription, Error> {
        self.subscribe_with_batch_size(function, DEFAULT_BATCH_SIZE)
    }

    /// [`QueueHandle::subscribe`] with up to `batch_size` messages per invocation (1 to 10).
    pub fn subscribe_with_batch_size(
        &self,
        function: &FunctionHandle,
        batch_size: u32,
    ) -> Result<Subscription, Error> {
        if !(1..=10).contains(&batch_size) {
            return Err(Error::invalid(
                self.name(),
                format!(
                    "the batch size of the subscription of `{}` must be 1 to 10, not {batch_size}",
                    function.name()
                ),
            ));
        }
        let resources = match self.program.target() {
            Target::Local => local::queue_subscription(&self.program, self, function, batch_size),
            Target::Aws => aws::queue_subscription(&self.program, self, function, batch_size)?,
        };
        Ok(Subscription { resources })
    }
}

/// The resources of a trigger (a subscription, a bucket notification); usable in `depends_on`.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub(crate) resources: Vec<String>,
}

impl Subscription {
    /// The names of its resources.
    pub fn resources(&self) -> &[String] {
        &self.resources
    }
}

impl Dependency for Subscription {
    fn dependency_names(&self) -> Vec<String> {
        self.resources.clone()
    }
}
