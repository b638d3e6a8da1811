//! Stage 4: forward a permitted request to its upstream and stream the answer back.
//!
//! Reads [`Permit`](crate::policy::Permit) (refuses with 500 if it is missing: fail closed),
//! [`RouteMatch`](crate::routes::RouteMatch), the optional
//! [`Principal`](crate::identity::Principal) and the peer address. The only stage that
//! returns `Err` ([`ProxyError`]), which the rescue layer turns into 502 or 504.

pub mod client;
pub mod error;
pub mod forward;
pub mod pool;
pub mod upstream;

pub use client::Proxy;
pub use error::ProxyError;
pub use forward::{ForwardSettings, IdentityHeaders};
pub use upstream::Upstream;
