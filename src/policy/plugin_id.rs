//! Which Backstage plugin owns a resource type: the `pluginId` of a CONDITIONAL decision.

/// The plugin that owns `resource_type`, as Backstage's permission resource refs declare it.
///
/// Known types: `catalog-entity` → `catalog`; `scaffolder-template`, `scaffolder-action`
/// and `scaffolder-task` → `scaffolder`; `kubernetes-cluster` and `kubernetes-resource`
/// → `kubernetes`; `policy-entity` → `permission`. Any other type maps to the part before
/// its first `-` (the whole type if it has none).
pub fn plugin_id_for_resource_type(resource_type: &str) -> &str {
    match resource_type {
        "catalog-entity" => "catalog",
        "scaffolder-template" | "scaffolder-action" | "scaffolder-task" => "scaffolder",
        "kubernetes-cluster" | "kubernetes-resource" => "kubernetes",
        "policy-entity" => "permission",
        other => other.split_once('-').map_or(other, |(plugin, _)| plugin),
    }
}

#[cfg(test)]
mod tests {
    use super::plugin_id_for_resource_type;

    #[test]
    fn maps_known_and_unknown_resource_types() {
        let cases = [
            ("catalog-entity", "catalog"),
            ("scaffolder-template", "scaffolder"),
            ("scaffolder-action", "scaffolder"),
            ("scaffolder-task", "scaffolder"),
            ("kubernetes-cluster", "kubernetes"),
            ("kubernetes-resource", "kubernetes"),
            ("policy-entity", "permission"),
            ("playlist-list", "playlist"),
            ("techdocs-site-entity", "techdocs"),
            ("widget", "widget"),
            ("", ""),
        ];
        for (resource_type, plugin) in cases {
            assert_eq!(plugin_id_for_resource_type(resource_type), plugin, "{resource_type}");
        }
    }
}
