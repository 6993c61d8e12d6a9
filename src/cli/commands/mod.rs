//! One file per command. Each command's `Args` carries the doc comments that become its
//! `--help`.

pub mod cancel;
pub mod completion;
pub mod config;
pub mod destroy;
pub mod dev;
pub mod graph;
pub mod import;
pub mod invoke;
pub mod local;
pub mod logs;
pub mod new;
pub mod outputs;
pub mod preview;
pub mod provider;
pub mod refresh;
pub mod stack;
pub mod synth;
pub mod up;
