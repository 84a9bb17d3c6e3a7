//! What the shim shares with the Mesos agent: the on-disk layout of a run, and the pid checkpoint.

pub mod checkpoint;
pub mod layout;
