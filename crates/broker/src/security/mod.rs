//! Who a client is, and (as the security work lands) what it may do:
//! principals here; SCRAM credentials and ACLs are broker metadata beside
//! them. The embedded API is trusted and never consults this module.

pub mod acl;
mod principal;
pub mod scram;
pub mod users;

pub use principal::Principal;
pub use scram::{AuthFailure, ScramCredential, ScramMechanism};
pub use users::{UserChange, Users};
