//! The `Topic` component: publish/subscribe with SNS semantics; every subscribed function gets
//! every message. Subscriptions are resources of their own, for the reason given in
//! [`queue`](crate::queue).

use crate::component::{Component, Expansion, component_handle};
use serde_json::Value;

use crate::{
    Error, FunctionHandle, Program, QueueHandle, Ref, ResourceOptions, Subscription, Target, aws, local,
};

/// A topic, described with a builder and declared with [`Program::add`]:
///
/// ```
/// use skyform_sdk::{Topic, Program, Target};
/// let ctx = Program::new("p", "dev", Target::Local, serde_json::json!({}));
/// let events = ctx.add(Topic::new("events")).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct Topic {
    pub(crate) name: String,
    pub(crate) fifo: bool,
    pub(crate) options: ResourceOptions,
}

impl Topic {
    /// A standard topic.
    pub fn new(name: impl Into<String>) -> Topic {
        Topic { name: name.into(), fifo: false, options: ResourceOptions::default() }
    }

    /// A FIFO topic: ordered delivery per message group.
    pub fn fifo(mut self, fifo: bool) -> Self {
        self.fifo = fifo;
        self
    }

    /// Options applied to every resource of the topic; `parent` nests the component.
    pub fn options(mut self, options: ResourceOptions) -> Self {
        self.options = options;
        self
    }
}

impl Component for Topic {
    type Handle = TopicHandle;

    fn add_to(self, ctx: &Program) -> Result<TopicHandle, Error> {
        let expansion = match ctx.target() {
            Target::Local => local::topic(ctx, &self),
            Target::Aws => aws::topic(ctx, &self)?,
        };
        Ok(TopicHandle { expansion, program: ctx.clone() })
    }
}

/// A declared [`Topic`].
#[derive(Debug, Clone)]
pub struct TopicHandle {
    pub(crate) expansion: Expansion,
    pub(crate) program: Program,
}
component_handle!(TopicHandle);

impl TopicHandle {
    /// The topic ARN, what publishers pass as `TopicArn`.
    pub fn arn(&self) -> Ref {
        self.expansion.output("arn")
    }

    /// The topic's physical name.
    pub fn topic_name(&self) -> Ref {
        self.expansion.output("topic_name")
    }

    /// Invokes `function` with every message published (an SNS event).
    pub fn subscribe(&self, function: &FunctionHandle) -> Result<Subscription, Error> {
        let resources = match self.program.target() {
            Target::Local => local::topic_subscription(&self.program, self, function),
            Target::Aws => aws::topic_subscription(&self.program, self, function)?,
        };
        Ok(Subscription { resources })
    }

    /// Sends every message to `queue`, in the SNS envelope (a JSON document whose `Message` is
    /// what was published), as SNS does for an `sqs` subscription.
    pub fn subscribe_queue(&self, queue: &QueueHandle) -> Result<Subscription, Error> {
        self.subscribe_queue_with(queue, QueueDelivery::new())
    }

    /// [`TopicHandle::subscribe_queue`] with delivery settings: raw delivery (the message
    /// itself, its attributes as SQS message attributes) and a filter policy.
    ///
    /// ```
    /// use skyform_sdk::{Program, Queue, QueueDelivery, Target, Topic};
    /// let ctx = Program::new("p", "dev", Target::Local, serde_json::json!({}));
    /// let events = ctx.add(Topic::new("events")).unwrap();
    /// let audit = ctx.add(Queue::new("audit")).unwrap();
    /// let delivery = QueueDelivery::new().raw(true).filter_policy(serde_json::json!({"kind": ["audit"]}));
    /// events.subscribe_queue_with(&audit, delivery).unwrap();
    /// ```
    pub fn subscribe_queue_with(
        &self,
        queue: &QueueHandle,
        delivery: QueueDelivery,
    ) -> Result<Subscription, Error> {
        if let Some(policy) = &delivery.filter_policy
            && policy.as_object().is_none_or(|m| m.is_empty())
        {
            return Err(Error::invalid(
                self.name(),
                format!(
                    "the filter policy of the subscription of `{}` must be a JSON object of attribute \
                     names to arrays of conditions, such as {{\"kind\": [\"audit\"]}}; got {policy}",
                    queue.name()
                ),
            ));
        }
        let resources = match self.program.target() {
            Target::Local => local::topic_queue_subscription(&self.program, self, queue, &delivery),
            Target::Aws => aws::topic_queue_subscription(&self.program, self, queue, &delivery)?,
        };
        Ok(Subscription { resources })
    }
}

/// How a topic delivers to a subscribed queue ([`TopicHandle::subscribe_queue_with`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueDelivery {
    pub(crate) raw: bool,
    pub(crate) filter_policy: Option<Value>,
}

impl QueueDelivery {
    /// The SNS envelope, every message.
    pub fn new() -> QueueDelivery {
        QueueDelivery::default()
    }

    /// Raw message delivery: the queue gets the published message itself, not the envelope.
    pub fn raw(mut self, raw: bool) -> Self {
        self.raw = raw;
        self
    }

    /// Only messages whose attributes match `policy`, an SNS filter policy such as
    /// `{"kind": ["audit"]}` (the local cloud's README lists the operators it supports).
    pub fn filter_policy(mut self, policy: Value) -> Self {
        self.filter_policy = Some(policy);
        self
    }
}
