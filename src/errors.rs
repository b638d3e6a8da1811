//! Rejections: why the gateway refused a request, rendered once as Backstage's error envelope.
//!
//! Every refusal (400, 401, 403, 404, 413, 431, 502, 504, 500) is an `Ok(Response)` built
//! here, so the status code for each reason is chosen in exactly one `match`.

use http::{HeaderValue, Method, Response, StatusCode, header};
use serde::Serialize;

use crate::auth::AuthError;
use crate::body::{self, Body};
use crate::request_id::{REQUEST_ID, RequestId};

/// Why the gateway refused a request.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    /// The request target is not a path the gateway will decide on.
    #[error("{0}")]
    BadRequest(String),
    /// No credentials on the permission API (Backstage's wording).
    #[error("Missing credentials")]
    MissingCredentials,
    /// The policy or a condition could not be evaluated; never a guess.
    #[error("{0}")]
    PolicyError(String),
    /// The owning plugin answered apply-conditions with an error status, passed on.
    #[error("{1}")]
    PluginStatus(u16, String),
    /// A dependency needed for the decision (userinfo, a plugin applying conditions) failed:
    /// fail closed.
    #[error("{0}")]
    DependencyUnavailable(String),
    /// No bearer token was sent to a route that needs one.
    #[error("missing bearer token: this route requires an `Authorization: Bearer` token")]
    MissingToken,
    /// The bearer token failed verification.
    #[error("invalid token: {0}")]
    InvalidToken(#[source] AuthError),
    /// The policy denied the permission.
    #[error("{0}")]
    Forbidden(String),
    /// The request body is larger than the rule allows.
    #[error("request body exceeds the limit{}", .0.map(|limit| format!(" of {limit} bytes")).unwrap_or_default())]
    PayloadTooLarge(Option<u64>),
    /// No route rule matched and the unmatched policy refuses it.
    #[error("no route rule matches `{method} {path}`")]
    NoRoute {
        /// Request method.
        method: Method,
        /// Normalized path.
        path: String,
    },
    /// The upstream could not be reached or answered with something that is not HTTP.
    #[error("upstream `{0}` is unavailable")]
    BadGateway(String),
    /// The upstream did not answer within its timeout.
    #[error("upstream `{0}` did not answer in time")]
    GatewayTimeout(String),
    /// An internal invariant failed; the request is refused, never forwarded.
    #[error("internal error: the request was refused")]
    Internal,
}

impl Rejection {
    /// The rejection for a token that did not authenticate: 401, or 503 when the token may be
    /// fine but group membership could not be fetched.
    pub fn from_auth(err: AuthError) -> Self {
        match err {
            AuthError::UserinfoUnavailable(reason) => Rejection::DependencyUnavailable(format!(
                "group membership could not be fetched from userinfo: {reason}"
            )),
            other => Rejection::InvalidToken(other),
        }
    }

    /// The status code for this rejection: the one table of statuses.
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::BadRequest(_) => StatusCode::BAD_REQUEST,
            Rejection::MissingToken | Rejection::MissingCredentials | Rejection::InvalidToken(_) => {
                StatusCode::UNAUTHORIZED
            }
            Rejection::PolicyError(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Rejection::PluginStatus(status, _) => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
            Rejection::DependencyUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Rejection::Forbidden(_) => StatusCode::FORBIDDEN,
            Rejection::NoRoute { .. } => StatusCode::NOT_FOUND,
            Rejection::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Rejection::BadGateway(_) => StatusCode::BAD_GATEWAY,
            Rejection::GatewayTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Rejection::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Backstage's error name for this rejection.
    pub fn error_name(&self) -> &'static str {
        match self {
            Rejection::BadRequest(_) => "InputError",
            Rejection::MissingToken | Rejection::MissingCredentials | Rejection::InvalidToken(_) => {
                "AuthenticationError"
            }
            Rejection::PolicyError(_) => "Error",
            Rejection::PluginStatus(..) => "ResponseError",
            Rejection::DependencyUnavailable(_) => "ServiceUnavailableError",
            Rejection::Forbidden(_) => "NotAllowedError",
            Rejection::NoRoute { .. } => "NotFoundError",
            Rejection::PayloadTooLarge(_) => "PayloadTooLargeError",
            Rejection::BadGateway(_) => "BadGatewayError",
            Rejection::GatewayTimeout(_) => "GatewayTimeoutError",
            Rejection::Internal => "Error",
        }
    }

    /// Renders the rejection as Backstage's error envelope with the request id header.
    pub fn into_response(self, method: &Method, url: &str, request_id: Option<&RequestId>) -> Response<Body> {
        let status = self.status();
        let envelope = Envelope {
            error: ErrorPart { name: self.error_name(), message: self.to_string() },
            request: RequestPart { method: method.as_str(), url },
            response: ResponsePart { status_code: status.as_u16() },
        };
        // Serializing a struct of strings and integers cannot fail; fall back to a fixed body anyway.
        let json = serde_json::to_vec(&envelope).unwrap_or_else(|_| b"{}".to_vec());
        let mut response = Response::new(body::full(json));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match &self {
            Rejection::MissingToken | Rejection::MissingCredentials => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Rejection::InvalidToken(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer error=\"invalid_token\""));
            }
            _ => {}
        }
        if let Some(id) = request_id {
            headers.insert(REQUEST_ID, id.header_value().clone());
        }
        response
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: ErrorPart<'a>,
    request: RequestPart<'a>,
    response: ResponsePart,
}

#[derive(Serialize)]
struct ErrorPart<'a> {
    name: &'a str,
    message: String,
}

#[derive(Serialize)]
struct RequestPart<'a> {
    method: &'a str,
    url: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResponsePart {
    status_code: u16,
}

/// Renders `rejection` for `request`, logging why it was refused.
pub fn reject<B>(request: &http::Request<B>, rejection: Rejection) -> Response<Body> {
    respond(request.method(), request.uri(), request.extensions(), rejection)
}

/// [`reject`] for a request split into parts (layers that await keep only the parts borrowed,
/// so the body need not be `Sync`).
pub fn reject_parts(parts: &http::request::Parts, rejection: Rejection) -> Response<Body> {
    respond(&parts.method, &parts.uri, &parts.extensions, rejection)
}

fn respond(method: &Method, uri: &http::Uri, extensions: &http::Extensions, rejection: Rejection) -> Response<Body> {
    let url = uri.path_and_query().map_or("/", |p| p.as_str());
    if rejection.status().is_server_error() {
        tracing::warn!(status = rejection.status().as_u16(), reason = %rejection, "request refused");
    } else {
        tracing::info!(status = rejection.status().as_u16(), reason = %rejection, "request refused");
    }
    rejection.into_response(method, url, extensions.get::<RequestId>())
}
