//! The shipped presets (`config/presets/*.yaml`) against Backstage's permission tables
//! (reference §5.1–5.3): every rule guarded, every permission with Backstage's resource type
//! and action, every route decided by the permission Backstage checks on it.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use http::Request;

use crate::config::{Config, parse, raw};
use crate::errors::Rejection;
use crate::routes::layer::route;
use crate::routes::{Access, OnConditional};

const PRESETS: [(&str, &str); 3] = [
    ("config/presets/catalog.yaml", include_str!("../../../config/presets/catalog.yaml")),
    ("config/presets/scaffolder.yaml", include_str!("../../../config/presets/scaffolder.yaml")),
    ("config/presets/kubernetes.yaml", include_str!("../../../config/presets/kubernetes.yaml")),
];

/// Backstage's permissions (§5.1–5.3): name → (resource type, action); `None` type: basic.
const PERMISSIONS: &[(&str, Option<&str>, Option<&str>)] = &[
    ("catalog.entity.read", Some("catalog-entity"), Some("read")),
    ("catalog.entity.create", None, Some("create")),
    ("catalog.entity.delete", Some("catalog-entity"), Some("delete")),
    ("catalog.entity.refresh", Some("catalog-entity"), Some("update")),
    ("catalog.entity.validate", None, None),
    ("catalog.location.read", None, Some("read")),
    ("catalog.location.create", None, Some("create")),
    ("catalog.location.delete", None, Some("delete")),
    ("catalog.location.analyze", None, None),
    ("catalog.ingestion.read", None, Some("read")),
    ("catalog.ingestion.manage", None, Some("update")),
    ("catalog.entities.unprocessed.read", None, Some("read")),
    ("catalog.entities.unprocessed.delete", None, Some("delete")),
    ("scaffolder.template.parameter.read", Some("scaffolder-template"), Some("read")),
    ("scaffolder.template.step.read", Some("scaffolder-template"), Some("read")),
    ("scaffolder.action.execute", Some("scaffolder-action"), None),
    ("scaffolder.task.create", None, Some("create")),
    ("scaffolder.task.read", Some("scaffolder-task"), Some("read")),
    ("scaffolder.task.cancel", Some("scaffolder-task"), None),
    ("scaffolder.template.dry-run", None, None),
    ("scaffolder.template.management", None, None),
    ("kubernetes.resources.read", None, Some("read")),
    ("kubernetes.clusters.read", None, Some("read")),
    ("kubernetes.proxy", None, None),
];

/// The routes Backstage checks no permission on (authenticated only).
const AUTHENTICATED: [(&str, &str); 3] =
    [("GET", "/v2/actions"), ("POST", "/v2/autocomplete/{provider}/{resource}"), ("GET", "/v2/templating-extensions")];

fn presets() -> Vec<(&'static str, raw::Included)> {
    PRESETS
        .iter()
        .map(|(file, text)| (*file, parse::<raw::Included>(text, file, &|_| None).unwrap_or_else(|e| panic!("{e}"))))
        .collect()
}

#[test]
fn every_preset_rule_names_a_permission_or_says_authenticated() {
    for (file, preset) in presets() {
        assert!(preset.include.is_none(), "{file}");
        assert!(!preset.routes.is_empty(), "{file}");
        for (r, group) in preset.routes.iter().enumerate() {
            for (i, rule) in group.rules.iter().enumerate() {
                let at = format!("{file}: routes[{r}].rules[{i}] ({})", rule.path);
                // Nothing in Backstage's core plugins is public.
                assert!(!rule.public, "{at} is public");
                let methods = rule.methods.clone().unwrap_or_default();
                match (&rule.permission, rule.authenticated) {
                    (Some(_), false) => {}
                    (None, true) => assert!(
                        methods.len() == 1 && AUTHENTICATED.contains(&(methods[0].as_str(), rule.path.as_str())),
                        "{at} is `authenticated: true`, but Backstage checks a permission there"
                    ),
                    _ => panic!("{at} needs exactly one of `permission` and `authenticated: true`"),
                }
            }
        }
    }
}

#[test]
fn preset_permissions_carry_backstages_resource_type_and_action() {
    let table: HashMap<&str, (Option<&str>, Option<&str>)> =
        PERMISSIONS.iter().map(|(name, resource_type, action)| (*name, (*resource_type, *action))).collect();
    let mut used: BTreeSet<String> = BTreeSet::new();
    for (file, preset) in presets() {
        for rule in preset.routes.iter().flat_map(|group| &group.rules) {
            let Some(name) = rule.permission.as_deref() else { continue };
            let at = format!("{file}: {} ({name})", rule.path);
            let Some((resource_type, action)) = table.get(name) else { panic!("{at}: not a Backstage permission") };
            assert_eq!(rule.resource_type.as_deref(), *resource_type, "{at}: resource_type");
            assert_eq!(rule.action.as_deref(), *action, "{at}: action");
            // A basic permission with a resource ref is refused by Backstage (§2.2).
            assert!(rule.resource_ref.is_none() || resource_type.is_some(), "{at}: resource_ref on a basic permission");
            // Only a resource permission can be CONDITIONAL.
            assert!(
                rule.on_conditional.is_none() || resource_type.is_some(),
                "{at}: on_conditional on a basic permission"
            );
            used.insert(name.to_owned());
        }
    }
    // The permissions no route checks (frontend-only, run-time or filtering permissions).
    let unused: Vec<&str> = PERMISSIONS.iter().map(|(name, ..)| *name).filter(|name| !used.contains(*name)).collect();
    assert_eq!(
        unused,
        [
            "catalog.entity.create",
            "catalog.ingestion.read",
            "catalog.ingestion.manage",
            "scaffolder.template.parameter.read",
            "scaffolder.template.step.read",
            "scaffolder.action.execute",
            "scaffolder.template.management",
        ]
    );
}

/// What decides a request: the permission (or `authenticated`), the resource ref, and whether a
/// CONDITIONAL decision is forwarded.
type Expect = (&'static str, Option<&'static str>, bool);

/// Every route of §5.1–5.3, with a concrete path.
const ROUTES: &[(&str, &str, Expect)] = &[
    // §5.1 catalog
    ("GET", "/api/catalog/entities", ("catalog.entity.read", None, true)),
    ("GET", "/api/catalog/entities/by-query", ("catalog.entity.read", None, true)),
    ("POST", "/api/catalog/entities/by-query", ("catalog.entity.read", None, true)),
    ("GET", "/api/catalog/entities/by-uid/0a1b", ("catalog.entity.read", None, true)),
    (
        "GET",
        "/api/catalog/entities/by-name/component/default/payments",
        ("catalog.entity.read", Some("component:default/payments"), true),
    ),
    ("POST", "/api/catalog/entities/by-refs", ("catalog.entity.read", None, true)),
    (
        "GET",
        "/api/catalog/entities/by-name/component/default/payments/ancestry",
        ("catalog.entity.read", Some("component:default/payments"), true),
    ),
    ("GET", "/api/catalog/entity-facets", ("catalog.entity.read", None, true)),
    ("POST", "/api/catalog/entity-facets", ("catalog.entity.read", None, true)),
    ("DELETE", "/api/catalog/entities/by-uid/0a1b", ("catalog.entity.delete", None, true)),
    ("POST", "/api/catalog/refresh", ("catalog.entity.refresh", None, true)),
    ("POST", "/api/catalog/locations", ("catalog.location.create", None, false)),
    ("PUT", "/api/catalog/locations/7", ("catalog.location.create", None, false)),
    ("GET", "/api/catalog/locations", ("catalog.location.read", None, false)),
    ("POST", "/api/catalog/locations/by-query", ("catalog.location.read", None, false)),
    ("GET", "/api/catalog/locations/7", ("catalog.location.read", None, false)),
    ("GET", "/api/catalog/locations/by-entity/component/default/payments", ("catalog.location.read", None, false)),
    ("DELETE", "/api/catalog/locations/7", ("catalog.location.delete", None, false)),
    ("POST", "/api/catalog/analyze-location", ("catalog.location.analyze", None, false)),
    ("POST", "/api/catalog/validate-entity", ("catalog.entity.validate", None, false)),
    ("GET", "/api/catalog/entities/unprocessed/failed", ("catalog.entities.unprocessed.read", None, false)),
    ("GET", "/api/catalog/entities/unprocessed/pending", ("catalog.entities.unprocessed.read", None, false)),
    ("DELETE", "/api/catalog/entities/unprocessed/delete/9", ("catalog.entities.unprocessed.delete", None, false)),
    // §5.2 scaffolder
    (
        "GET",
        "/api/scaffolder/v2/templates/default/template/react-app/parameter-schema",
        ("catalog.entity.read", Some("template:default/react-app"), true),
    ),
    ("POST", "/api/scaffolder/v2/tasks", ("scaffolder.task.create", None, false)),
    ("GET", "/api/scaffolder/v2/tasks", ("scaffolder.task.read", None, true)),
    ("GET", "/api/scaffolder/v2/tasks/t-1", ("scaffolder.task.read", Some("t-1"), true)),
    ("GET", "/api/scaffolder/v2/tasks/t-1/events", ("scaffolder.task.read", Some("t-1"), true)),
    ("GET", "/api/scaffolder/v2/tasks/t-1/eventstream", ("scaffolder.task.read", Some("t-1"), true)),
    ("POST", "/api/scaffolder/v2/tasks/t-1/cancel", ("scaffolder.task.cancel", Some("t-1"), true)),
    ("POST", "/api/scaffolder/v2/tasks/t-1/retry", ("scaffolder.task.create", None, false)),
    ("POST", "/api/scaffolder/v2/dry-run", ("scaffolder.template.dry-run", None, false)),
    ("GET", "/api/scaffolder/v2/actions", ("authenticated", None, false)),
    ("POST", "/api/scaffolder/v2/autocomplete/github/repositories", ("authenticated", None, false)),
    ("GET", "/api/scaffolder/v2/templating-extensions", ("authenticated", None, false)),
    // §5.3 kubernetes
    ("POST", "/api/kubernetes/services/payments", ("kubernetes.resources.read", None, false)),
    ("POST", "/api/kubernetes/resources/workloads/query", ("kubernetes.resources.read", None, false)),
    ("POST", "/api/kubernetes/resources/custom/query", ("kubernetes.resources.read", None, false)),
    ("GET", "/api/kubernetes/clusters", ("kubernetes.clusters.read", None, false)),
    ("GET", "/api/kubernetes/proxy/api/v1/namespaces", ("kubernetes.proxy", None, false)),
    ("POST", "/api/kubernetes/proxy/apis/apps/v1/deployments", ("kubernetes.proxy", None, false)),
    ("DELETE", "/api/kubernetes/proxy/api/v1/pods/x", ("kubernetes.proxy", None, false)),
];

fn request(method: &str, path: &str) -> Request<()> {
    Request::builder().method(method).uri(path).header("host", "gateway").body(()).unwrap()
}

#[test]
fn the_example_backstage_config_routes_every_section_5_route_as_backstage_checks_it() {
    let text = include_str!("../../../config/backstage.yaml");
    let config =
        Config::from_yaml(text, Path::new("config/backstage.yaml"), |_| None).unwrap_or_else(|e| panic!("{e}"));
    let mut labels = BTreeSet::new();
    for (method, path, (expected, resource_ref, forwards)) in ROUTES {
        let at = format!("{method} {path}");
        let found = route(&config.routes, &request(method, path)).unwrap_or_else(|e| panic!("{at}: {e}"));
        let access = match &found.rule.access {
            Access::Permission(permission) => &*permission.name,
            Access::Authenticated => "authenticated",
            Access::Public => "public",
        };
        assert_eq!(access, *expected, "{at}");
        assert_eq!(found.resource_ref.as_deref(), *resource_ref, "{at}");
        assert_eq!(found.rule.on_conditional == OnConditional::Forward, *forwards, "{at}: on_conditional");
        labels.insert(found.rule.label.to_string());
    }
    // Every preset rule is one of Backstage's routes: none is left out of the table above.
    assert_eq!(labels.len(), config.routes.rule_count(), "{labels:#?}");
    // What no rule covers is refused (`unmatched: deny`).
    for (method, path) in [("GET", "/api/catalog/secrets"), ("POST", "/api/catalog/entities"), ("GET", "/api/other")] {
        let refused = route(&config.routes, &request(method, path));
        assert!(matches!(refused, Err(Rejection::NoRoute { .. })), "{method} {path}: {refused:?}");
    }
}
