//! How each component expands on the `aws` target. **Not written yet.**
//!
//! This is where the AWS expansion of every component goes, one function per component with the
//! same signature as its counterpart in `local.rs`, e.g. a [`Function`] becomes an IAM role, a
//! `aws:lambda:Function` and a log group; an [`HttpApi`] an API Gateway v2 API, a stage,
//! integrations, routes and invoke permissions; a queue subscription an event source mapping.
//! Each expansion starts with `component::begin` (which records the component and gives its
//! children their `parent`) and ends with `Children::finish(&main)`, naming the resource whose
//! outputs the component handle exposes. **Invariant:** that main resource must expose the
//! outputs the handle's accessors name (`function_name` and `arn` for a function, `url` for an
//! API, ...), so that a program reads the same on every target.
//!
//! Two details to carry over from `local.rs`, where a component has a single resource of the same
//! name and both are trivially true: the component's `options` apply to each child, except
//! `aliases`, which name former *component* names and must be mapped to the children's former
//! names; and `ignore_changes`/`replace_on_changes` name input properties, which differ per
//! target, so apply them only to the child that has them.
//!
//! Until then every function here returns [`Error::UnsupportedTarget`], which `run` prints.

use crate::bucket::{Bucket, BucketHandle, Notification};
use crate::component::Expansion;
use crate::function::Function;
use crate::http_api::HttpApi;
use crate::queue::{Queue, QueueHandle};
use crate::schedule::Schedule;
use crate::table::Table;
use crate::topic::{Topic, TopicHandle};
use crate::{Error, FunctionHandle, Program};

fn unsupported<T>(component: &str, component_type: &str) -> Result<T, Error> {
    Err(Error::UnsupportedTarget {
        target: "aws".to_string(),
        component: component.to_string(),
        component_type: component_type.to_string(),
    })
}

pub(crate) fn function(_ctx: &Program, f: &Function) -> Result<Expansion, Error> {
    unsupported(&f.name, "skyform:Function")
}

pub(crate) fn http_api(_ctx: &Program, api: &HttpApi) -> Result<Expansion, Error> {
    unsupported(&api.name, "skyform:HttpApi")
}

pub(crate) fn queue(_ctx: &Program, q: &Queue) -> Result<Expansion, Error> {
    unsupported(&q.name, "skyform:Queue")
}

pub(crate) fn queue_subscription(
    _ctx: &Program,
    q: &QueueHandle,
    _f: &FunctionHandle,
    _batch_size: u32,
) -> Result<Vec<String>, Error> {
    unsupported(q.name(), "skyform:Queue")
}

pub(crate) fn topic(_ctx: &Program, t: &Topic) -> Result<Expansion, Error> {
    unsupported(&t.name, "skyform:Topic")
}

pub(crate) fn topic_subscription(
    _ctx: &Program,
    t: &TopicHandle,
    _f: &FunctionHandle,
) -> Result<Vec<String>, Error> {
    unsupported(t.name(), "skyform:Topic")
}

pub(crate) fn bucket(_ctx: &Program, b: &Bucket) -> Result<Expansion, Error> {
    unsupported(&b.name, "skyform:Bucket")
}

pub(crate) fn bucket_notification(
    _ctx: &Program,
    b: &BucketHandle,
    _f: &FunctionHandle,
    _n: &Notification,
) -> Result<Vec<String>, Error> {
    unsupported(b.name(), "skyform:Bucket")
}

pub(crate) fn schedule(_ctx: &Program, s: &Schedule) -> Result<Expansion, Error> {
    unsupported(&s.name, "skyform:Schedule")
}

pub(crate) fn table(_ctx: &Program, t: &Table) -> Result<Expansion, Error> {
    unsupported(&t.name, "skyform:Table")
}
