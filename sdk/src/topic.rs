//! The `Topic` component: publish/subscribe with SNS semantics; every subscribed function gets
//! every message. Subscriptions are resources of their own, for the reason given in
//! [`queue`](crate::queue).

use crate::component::{Component, Expansion, component_handle};
use crate::{Error, FunctionHandle, Program, Ref, ResourceOptions, Subscription, Target, aws, local};

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
}
