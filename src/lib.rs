//! stagedoor: a reverse-proxy authorization gateway that enforces Backstage-style permissions
//! in front of HTTP backends that do not check them themselves.
//!
//! A request goes through one tower layer per concern, in one direction:
//!
//! ```text
//! TCP ─▶ server (hyper h1/h2, PeerAddr)  ─▶ request_id (x-request-id, span)
//!   ─▶ rescue      Err from below → 502 / 504 / 500; nothing above sees an error
//!   ─▶ routes      normalize path (400 if refused) → rule or 404      + RouteMatch
//!   ─▶ auth        public rules skip; bearer token → Principal or 401  + Principal
//!   ─▶ policy      rule's permission + principal → ALLOW / DENY(403) / CONDITIONAL  + Permit
//!   ─▶ proxy       requires Permit; strip hop-by-hop + spoofed identity headers, set
//!                  x-stagedoor-user / -ownership and X-Forwarded-*, stream to upstream
//! ```
//!
//! Rejections are responses in Backstage's error envelope, built in [`errors`].

pub mod auth;
pub mod body;
pub mod cli;
pub mod config;
pub mod connection;
pub mod demo;
pub mod errors;
pub mod hashing;
pub mod identity;
pub mod mint;
pub mod permission_api;
pub mod plugins;
pub mod policy;
pub mod proxy;
pub mod request_id;
pub mod rescue;
pub mod routes;
pub mod server;

use tower::ServiceBuilder;

use crate::auth::AuthenticateLayer;
use crate::config::Config;
use crate::permission_api::PermissionApiLayer;
use crate::policy::AuthorizeLayer;
use crate::proxy::Proxy;
use crate::request_id::RequestIdLayer;
use crate::rescue::RescueLayer;
use crate::routes::MatchRouteLayer;
use crate::server::App;

/// Assembles the middleware stack for a compiled configuration.
pub fn app(config: &Config) -> App {
    let stack = ServiceBuilder::new()
        // Outermost: every response, rejections included, carries the request id.
        .layer(RequestIdLayer)
        // Turns the proxy's errors into 502/504 so hyper never sees a failed service.
        .layer(RescueLayer)
        // Backstage's permission API is answered here, by the same policy, never proxied.
        .option_layer(config.permission_api.clone().map(|settings| {
            PermissionApiLayer::new(
                settings,
                config.authenticator.clone(),
                config.policy.clone(),
                config.plugins.clone(),
                config.plugin_tokens.clone(),
            )
        }))
        // Route first: a rule may be public, and the path decided is the path forwarded.
        .layer(MatchRouteLayer::new(config.routes.clone()))
        // 401 before the policy is asked anything.
        .layer(AuthenticateLayer::new(config.authenticator.clone()))
        // 403 unless the policy allows; issues the Permit the proxy requires.
        .layer(AuthorizeLayer::new(config.policy.clone(), config.plugins.clone(), config.permission_enabled))
        .service(Proxy::new(config.forward.clone()));
    App::new(stack)
}
