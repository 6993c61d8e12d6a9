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
    /// whose invocation fails become visible again after the visibility timeout, and a function
    /// that returns `{"batchItemFailures": [{"itemIdentifier": MESSAGE_ID}, …]}` has only those
    /// retried (on `aws` the mapping reports batch item failures, so both targets behave alike).
    pub fn subscribe(&self, function: &FunctionHandle) -> Result<Subscription, Error> {
        self.subscribe_with(function, QueueTrigger::new())
    }

    /// [`QueueHandle::subscribe`] with up to `batch_size` messages per invocation (1 to 10).
    pub fn subscribe_with_batch_size(
        &self,
        function: &FunctionHandle,
        batch_size: u32,
    ) -> Result<Subscription, Error> {
        self.subscribe_with(function, QueueTrigger::new().batch_size(batch_size))
    }

    /// [`QueueHandle::subscribe`] with the trigger's settings: batch size, batching window and
    /// maximum concurrency.
    ///
    /// ```
    /// use skyform_sdk::{Function, Program, Queue, QueueTrigger, Runtime, Target};
    /// let ctx = Program::new("p", "dev", Target::Local, serde_json::json!({}));
    /// let jobs = ctx.add(Queue::new("jobs")).unwrap();
    /// let worker = Function::new("worker").code("functions/worker").handler("app.handler").runtime(Runtime::Python3);
    /// let worker = ctx.add(worker).unwrap();
    /// jobs.subscribe_with(&worker, QueueTrigger::new().batch_size(5).batching_window_secs(2).maximum_concurrency(4))
    ///     .unwrap();
    /// ```
    pub fn subscribe_with(
        &self,
        function: &FunctionHandle,
        trigger: QueueTrigger,
    ) -> Result<Subscription, Error> {
        let f = function.name();
        let invalid = |what: &str, rule: &str, got: u32| {
            Error::invalid(
                self.name(),
                format!("the {what} of the subscription of `{f}` must be {rule}, not {got}"),
            )
        };
        if !(1..=10).contains(&trigger.batch_size) {
            return Err(invalid("batch size", "1 to 10", trigger.batch_size));
        }
        if trigger.batching_window > 300 {
            return Err(invalid("batching window", "0 to 300 seconds", trigger.batching_window));
        }
        if let Some(n) = trigger.maximum_concurrency
            && !(2..=1000).contains(&n)
        {
            return Err(invalid("maximum concurrency", "2 to 1000 (Lambda's bounds)", n));
        }
        let resources = match self.program.target() {
            Target::Local => local::queue_subscription(&self.program, self, function, &trigger),
            Target::Aws => aws::queue_subscription(&self.program, self, function, &trigger)?,
        };
        Ok(Subscription { resources })
    }
}

/// How a queue feeds a subscribed function ([`QueueHandle::subscribe_with`]); the defaults are
/// Lambda's: batches of up to 10, no batching window, no concurrency limit of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueTrigger {
    pub(crate) batch_size: u32,
    pub(crate) batching_window: u32,
    pub(crate) maximum_concurrency: Option<u32>,
}

impl Default for QueueTrigger {
    fn default() -> Self {
        QueueTrigger::new()
    }
}

impl QueueTrigger {
    /// Batches of up to 10 messages, handed over as soon as there are any.
    pub fn new() -> QueueTrigger {
        QueueTrigger { batch_size: DEFAULT_BATCH_SIZE, batching_window: 0, maximum_concurrency: None }
    }

    /// At most `n` messages per invocation (1 to 10).
    pub fn batch_size(mut self, n: u32) -> Self {
        self.batch_size = n;
        self
    }

    /// Waits up to `secs` (0 to 300) for a fuller batch before invoking.
    pub fn batching_window_secs(mut self, secs: u32) -> Self {
        self.batching_window = secs;
        self
    }

    /// At most `n` invocations of this trigger at once (2 to 1000, Lambda's bounds). Without
    /// it, Lambda scales up to the function's concurrency and the local cloud runs 5 at once.
    pub fn maximum_concurrency(mut self, n: u32) -> Self {
        self.maximum_concurrency = Some(n);
        self
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
