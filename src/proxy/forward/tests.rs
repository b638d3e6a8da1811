use std::sync::Arc;

use super::*;

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
    }
    map
}

fn jane() -> Principal {
    Principal::new("user:default/jane".into(), vec!["group:default/team-a".into()], Arc::from("test"))
}

#[test]
fn replaces_spoofed_identity_headers_in_every_spelling() {
    let settings = ForwardSettings::default();
    let mut map = headers(&[
        ("X-Stagedoor-User", "user:default/admin"),
        ("x-stagedoor-ownership", "group:default/admins"),
        ("x_stagedoor_user", "user:default/admin"),
        ("X_Stagedoor_Ownership", "group:default/admins"),
    ]);
    settings.prepare_request(&mut map, Some(&jane()), None, None);
    assert_eq!(map.get_all("x-stagedoor-user").iter().collect::<Vec<_>>(), ["user:default/jane"]);
    assert_eq!(map["x-stagedoor-ownership"], "user:default/jane,group:default/team-a");
    assert!(!map.contains_key("x_stagedoor_user"));
    assert!(!map.contains_key("x_stagedoor_ownership"));
}

#[test]
fn strips_identity_headers_when_there_is_no_principal() {
    let mut map = headers(&[("x-stagedoor-user", "user:default/admin")]);
    ForwardSettings::default().prepare_request(&mut map, None, None, None);
    assert!(!map.contains_key("x-stagedoor-user"));
}

#[test]
fn removes_hop_by_hop_and_connection_named_headers_but_keeps_authorization() {
    let mut map = headers(&[
        ("connection", "keep-alive, x-secret, authorization, x-stagedoor-user"),
        ("keep-alive", "timeout=5"),
        ("x-secret", "1"),
        ("te", "trailers"),
        ("upgrade", "websocket"),
        ("authorization", "Bearer abc"),
        ("x-http-method-override", "DELETE"),
    ]);
    ForwardSettings::default().prepare_request(&mut map, Some(&jane()), None, None);
    for gone in ["connection", "keep-alive", "x-secret", "te", "upgrade", "x-http-method-override"] {
        assert!(!map.contains_key(gone), "{gone} should be removed");
    }
    assert_eq!(map["authorization"], "Bearer abc");
    assert_eq!(map["x-stagedoor-user"], "user:default/jane");
}

#[test]
fn forwarded_for_is_replaced_for_untrusted_peers_and_appended_for_trusted_ones() {
    let peer = &crate::connection::PeerAddr::new("10.0.0.7:5555".parse().unwrap());
    let mut untrusted =
        headers(&[("x-forwarded-for", "1.2.3.4"), ("host", "gw.example"), ("x-forwarded-host", "evil")]);
    ForwardSettings::default().prepare_request(&mut untrusted, None, Some(peer), None);
    assert_eq!(untrusted["x-forwarded-for"], "10.0.0.7");
    assert_eq!(untrusted["x-forwarded-host"], "gw.example");
    assert_eq!(untrusted["x-forwarded-proto"], "http");
    assert!(!untrusted.contains_key("host"));

    let settings = ForwardSettings { trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()], ..Default::default() };
    let mut trusted = headers(&[("x-forwarded-for", "1.2.3.4"), ("x-forwarded-for", "5.6.7.8")]);
    settings.prepare_request(&mut trusted, None, Some(peer), None);
    assert_eq!(trusted["x-forwarded-for"], "1.2.3.4, 5.6.7.8, 10.0.0.7");
}

#[test]
fn responses_lose_hop_by_hop_headers_and_those_their_connection_header_names() {
    let settings = ForwardSettings::default();
    // What upstreams usually send: only `keep-alive` in `Connection`.
    let mut usual = headers(&[
        ("connection", "Keep-Alive"),
        ("keep-alive", "timeout=5"),
        ("content-type", "application/json"),
        ("x-backend", "1"),
    ]);
    settings.prepare_response(&mut usual);
    assert!(!usual.contains_key("connection") && !usual.contains_key("keep-alive"));
    assert_eq!(usual["content-type"], "application/json");
    assert_eq!(usual["x-backend"], "1");

    let mut naming = headers(&[
        ("connection", "close"),
        ("connection", " X-Internal , upgrade"),
        ("x-internal", "secret"),
        ("upgrade", "h2c"),
        ("trailer", "x-checksum"),
        ("x-backend", "1"),
    ]);
    settings.prepare_response(&mut naming);
    for gone in ["connection", "x-internal", "upgrade", "trailer"] {
        assert!(!naming.contains_key(gone), "{gone} should be removed");
    }
    assert_eq!(naming["x-backend"], "1");
}
