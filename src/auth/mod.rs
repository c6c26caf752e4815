//! The device side of the challenge: JWT verification, the door policy, and the flow that
//! turns a camera frame into a verified decision.

pub mod flow;
pub mod jwt;
pub mod policy;

pub use flow::{Decision, DeviceFlow};
pub use policy::DoorPolicy;
