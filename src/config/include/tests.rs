use std::collections::HashMap;
use std::path::PathBuf;

use http::Method;

use crate::config::{Config, ConfigError};

/// A config folder with `gateway.yaml` and files beside it.
struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    fn new(files: &[(&str, &str)]) -> Dir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        Dir { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn load(&self, main: &str) -> Result<Config, ConfigError> {
        let vars = HashMap::from([
            ("SECRET".to_string(), "0123456789abcdef0123456789abcdef".to_string()),
            ("SCAFFOLDER_PREFIX".to_string(), "/api/scaffolder".to_string()),
        ]);
        let path = self.path("gateway.yaml");
        std::fs::write(&path, main).unwrap();
        Config::from_yaml(main, &path, |name| vars.get(name).cloned())
    }

    fn error(&self, main: &str) -> String {
        self.load(main).expect_err("config should be refused").to_string()
    }

    /// A path as errors show it.
    fn shown(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

fn main_yaml(include: &str) -> String {
    format!(
        r#"
identity:
  issuers:
    - {{ name: local, secret_env: SECRET, algorithms: [HS256] }}
upstreams:
  catalog: {{ url: "http://127.0.0.1:7008" }}
  scaffolder: {{ url: "http://127.0.0.1:7009" }}
include: {include}
routes:
  - prefix: /api/catalog
    upstream: catalog
    rules:
      - {{ path: /health, methods: [GET], public: true }}
"#
    )
}

const SCAFFOLDER: &str = r#"# Scaffolder routes (a leading comment is fine).
routes:
  - prefix: ${SCAFFOLDER_PREFIX}
    upstream: scaffolder
    rules:
      - { methods: [GET], path: /v2/actions, authenticated: true }
      - { methods: [POST], path: /v2/tasks, permission: scaffolder.task.create, action: create }
"#;

fn access(config: &Config, method: Method, path: &str) -> Option<String> {
    config.routes.find(&method, path).map(|found| format!("{} {:?}", found.rule.label, found.rule.access))
}

#[test]
fn included_route_groups_are_merged_after_the_config_files_own() {
    let dir = Dir::new(&[("presets/scaffolder.yaml", SCAFFOLDER)]);
    let config = dir.load(&main_yaml("[presets/scaffolder.yaml]")).unwrap();
    assert_eq!(config.routes.rule_count(), 3);
    let main = dir.shown("gateway.yaml");
    let preset = dir.shown("presets/scaffolder.yaml");
    // With includes, every rule label names its file.
    assert_eq!(
        access(&config, Method::GET, "/api/catalog/health").unwrap(),
        format!("{main}: routes[0].rules[0] Public")
    );
    assert_eq!(
        access(&config, Method::GET, "/api/scaffolder/v2/actions").unwrap(),
        format!("{preset}: routes[0].rules[0] Authenticated")
    );
    let found = config.routes.find(&Method::POST, "/api/scaffolder/v2/tasks").unwrap();
    assert!(matches!(&found.rule.access, crate::routes::Access::Permission(p) if &*p.name == "scaffolder.task.create"));
    assert_eq!(config.summary.includes, [format!("{preset} (1 route group(s), 2 rule(s))")]);
    assert!(config.summary.to_string().contains("include (1):"), "{}", config.summary);
}

#[test]
fn without_includes_rule_labels_stay_plain() {
    let dir = Dir::new(&[]);
    let config = dir.load(&main_yaml("[]")).unwrap();
    assert_eq!(access(&config, Method::GET, "/api/catalog/health").unwrap(), "routes[0].rules[0] Public");
    assert!(!config.summary.to_string().contains("include"), "{}", config.summary);
}

#[test]
fn problems_in_an_included_file_name_it_and_the_key_inside_it() {
    let bad = SCAFFOLDER.replace("permission: scaffolder.task.create", "permission: scaffolder task create");
    let dir = Dir::new(&[("presets/scaffolder.yaml", &bad)]);
    // A problem in the config file itself keeps naming the config file.
    let main = main_yaml("[presets/scaffolder.yaml]").replace("7008\" }", "7008\", timeout: soon }");
    let message = dir.error(&main);
    let lines: Vec<&str> = message.lines().collect();
    assert_eq!(
        lines,
        [
            format!(
                "{}: upstreams.catalog.timeout: expected a duration such as `30s` or `500ms`, got `soon`",
                dir.shown("gateway.yaml")
            ),
            format!(
                "{}: routes[0].rules[1].permission: expected a permission name such as `catalog.entity.read`, got `scaffolder task create`",
                dir.shown("presets/scaffolder.yaml")
            ),
        ]
    );
}

#[test]
fn unknown_keys_in_an_included_file_name_it() {
    let extra_key = SCAFFOLDER.replace("authenticated: true }", "authenticated: true, publik: true }");
    let dir = Dir::new(&[("a.yaml", &extra_key), ("b.yaml", "upstreams: {}\nroutes: []\n")]);
    let message = dir.error(&main_yaml("[a.yaml]"));
    assert!(
        message.starts_with(&format!("{}: routes[0].rules[0]: unknown field `publik`", dir.shown("a.yaml"))),
        "{message}"
    );
    // Only `routes` (and the refused `include`) are keys of an included file.
    let message = dir.error(&main_yaml("[b.yaml]"));
    assert!(message.starts_with(&format!("{}: unknown field `upstreams`", dir.shown("b.yaml"))), "{message}");
}

#[test]
fn a_missing_included_file_names_the_including_file_the_key_and_the_resolved_path() {
    let dir = Dir::new(&[("presets/scaffolder.yaml", SCAFFOLDER)]);
    let message = dir.error(&main_yaml("[presets/scaffolder.yaml, presets/nope.yaml]"));
    let expected =
        format!("{}: include[1]: cannot read `{}`: ", dir.shown("gateway.yaml"), dir.shown("presets/nope.yaml"));
    assert!(message.starts_with(&expected), "\nexpected: {expected}\n     got: {message}");
    assert_eq!(message.lines().count(), 1, "{message}");
}

#[test]
fn nested_includes_are_refused() {
    let nesting = format!("include: [scaffolder.yaml]\n{SCAFFOLDER}");
    let dir = Dir::new(&[("presets/all.yaml", &nesting), ("presets/scaffolder.yaml", SCAFFOLDER)]);
    let message = dir.error(&main_yaml("[presets/all.yaml]"));
    assert_eq!(
        message,
        format!(
            "{}: include: an included file cannot include others (nested includes are not supported); list every file in the `include` of `{}`",
            dir.shown("presets/all.yaml"),
            dir.shown("gateway.yaml")
        )
    );
}

#[test]
fn a_file_included_twice_is_refused() {
    let dir = Dir::new(&[("presets/scaffolder.yaml", SCAFFOLDER)]);
    let message = dir.error(&main_yaml("[presets/scaffolder.yaml, presets/scaffolder.yaml]"));
    assert_eq!(
        message,
        format!(
            "{}: include[1]: `{}` is already included by include[0]",
            dir.shown("gateway.yaml"),
            dir.shown("presets/scaffolder.yaml")
        )
    );
}

#[test]
fn environment_variables_are_substituted_in_included_files() {
    // `${SCAFFOLDER_PREFIX}` is set: the prefix above loads (see the merge test); an unset one
    // names the included file and its line.
    let unset = SCAFFOLDER.replace("${SCAFFOLDER_PREFIX}", "${NOT_SET_ANYWHERE}");
    let defaulted = SCAFFOLDER.replace("${SCAFFOLDER_PREFIX}", "${NOT_SET_ANYWHERE:-/api/tasks}");
    let dir = Dir::new(&[("unset.yaml", &unset), ("defaulted.yaml", &defaulted)]);
    assert_eq!(
        dir.error(&main_yaml("[unset.yaml]")),
        format!(
            "{}: line 3: environment variable `NOT_SET_ANYWHERE` is not set (use `${{NOT_SET_ANYWHERE:-default}}` for a default)",
            dir.shown("unset.yaml")
        )
    );
    let config = dir.load(&main_yaml("[defaulted.yaml]")).unwrap();
    assert!(access(&config, Method::GET, "/api/tasks/v2/actions").is_some());
}

#[test]
fn a_conflict_between_files_names_both_places() {
    let clash = "routes:\n  - prefix: /api/catalog\n    upstream: catalog\n    rules:\n      - { path: /health, methods: [GET], authenticated: true }\n";
    let dir = Dir::new(&[("presets/catalog.yaml", clash)]);
    let message = dir.error(&main_yaml("[presets/catalog.yaml]"));
    assert_eq!(
        message,
        format!(
            "{}: routes[0].rules[0].path: `/api/catalog/health` for GET is already decided by {}: routes[0].rules[0]",
            dir.shown("presets/catalog.yaml"),
            dir.shown("gateway.yaml")
        )
    );
}

#[test]
fn every_load_reads_the_included_files_again() {
    // A SIGHUP reload calls `Config::load`: an edited preset takes effect.
    let dir = Dir::new(&[("presets/scaffolder.yaml", SCAFFOLDER)]);
    let main = main_yaml("[presets/scaffolder.yaml]");
    assert!(access(&dir.load(&main).unwrap(), Method::GET, "/api/scaffolder/v2/templating-extensions").is_none());
    let edited =
        format!("{SCAFFOLDER}      - {{ methods: [GET], path: /v2/templating-extensions, authenticated: true }}\n");
    std::fs::write(dir.path("presets/scaffolder.yaml"), edited).unwrap();
    assert!(access(&dir.load(&main).unwrap(), Method::GET, "/api/scaffolder/v2/templating-extensions").is_some());
}

#[test]
fn include_paths_resolve_against_the_config_files_folder() {
    let dir = Dir::new(&[("conf/presets/scaffolder.yaml", SCAFFOLDER)]);
    let vars = HashMap::from([
        ("SECRET".to_string(), "0123456789abcdef0123456789abcdef".to_string()),
        ("SCAFFOLDER_PREFIX".to_string(), "/api/scaffolder".to_string()),
    ]);
    let path = dir.path("conf/gateway.yaml");
    let config =
        Config::from_yaml(&main_yaml("[presets/scaffolder.yaml]"), &path, |name| vars.get(name).cloned()).unwrap();
    assert_eq!(config.routes.rule_count(), 3);
    assert!(config.summary.includes[0].starts_with(&dir.shown("conf/presets/scaffolder.yaml")));
}
