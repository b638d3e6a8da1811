//! The Casbin CSV of the RBAC plugin: `p, role, object, action, effect` and `g, member, role`
//! lines, compiled into [`Rbac`].
//!
//! Written by hand rather than with the `csv` crate: the format is one record per line with
//! comma-separated, space-trimmed values that never hold commas, and every problem must name
//! its line in words the RBAC plugin's users know. Blank lines and `#` comments are skipped.
//! A value may be wrapped in double quotes; a quote anywhere else is refused, as the plugin
//! refuses `"` in permission values. Unlike the plugin, which skips a bad line with a
//! warning, every bad line fails the load, so a typo never silently drops a deny.

use super::{Effects, Rbac, RbacAction, check_role};
use crate::policy::compile::check_ref;
use crate::policy::error::Problems;

/// Compiles `text` into `rbac`, recording problems as `line N`.
pub(super) fn compile(text: &str, rbac: &mut Rbac, problems: &mut Problems) {
    for (index, line) in text.lines().enumerate() {
        let at = format!("line {}", index + 1);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some(fields) = fields(line, &at, problems) else { continue };
        match fields.first().copied() {
            Some("p") => policy(&fields, &at, rbac, problems),
            Some("g") => grouping(&fields, &at, rbac, problems),
            _ => problems.push(
                at,
                format!(
                    "expected a `p, role, permission-or-resource-type, action, allow|deny` or `g, member, role` line, got `{line}`"
                ),
            ),
        }
    }
}

/// Splits a line into trimmed values, unwrapping quoted ones.
fn fields<'a>(line: &'a str, at: &str, problems: &mut Problems) -> Option<Vec<&'a str>> {
    let mut out = Vec::with_capacity(5);
    for value in line.split(',') {
        let raw = value.trim();
        let value = raw.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(raw);
        if value.contains('"') {
            problems.push(at, format!("a `\"` is not allowed inside a value, got `{raw}`"));
            return None;
        }
        out.push(value);
    }
    Some(out)
}

/// `p, role, object, action, effect`
fn policy(fields: &[&str], at: &str, rbac: &mut Rbac, problems: &mut Problems) {
    let &[_, role, object, action, effect] = fields else {
        problems.push(
            at,
            format!(
                "a `p` line has 5 values (`p, role, permission-or-resource-type, action, allow|deny`), got {}",
                fields.len()
            ),
        );
        return;
    };
    let before = problems.len();
    if let Err(message) = check_role(role) {
        problems.push(at, format!("{message} (a `p` line grants a role; bind users and groups to it with `g` lines)"));
    }
    if object.is_empty() || object.contains(char::is_whitespace) {
        problems.push(
            at,
            format!(
                "expected a permission name like `catalog.entity.read` or a resource type like `catalog-entity`, got `{object}`"
            ),
        );
    }
    let action = RbacAction::parse(action);
    if action.is_none() {
        problems.push(
            at,
            format!(
                "unknown action `{}` (expected `create`, `read`, `update`, `delete`, or `use` for a permission without an action)",
                fields[3]
            ),
        );
    }
    let allow = match effect {
        "allow" => true,
        "deny" => false,
        other => {
            problems.push(at, format!("unknown effect `{other}` (expected `allow` or `deny`)"));
            return;
        }
    };
    let Some(action) = action else { return };
    if problems.len() != before {
        return;
    }
    let id = rbac.role_id(role);
    let effects: &mut Effects = rbac.roles[id].rules.entry(object.into()).or_default();
    if allow {
        effects.allow |= action.bit();
    } else {
        effects.deny |= action.bit();
    }
    rbac.rules += 1;
}

/// `g, member, role`
fn grouping(fields: &[&str], at: &str, rbac: &mut Rbac, problems: &mut Problems) {
    let &[_, member, role] = fields else {
        problems.push(at, format!("a `g` line has 3 values (`g, member, role`), got {}", fields.len()));
        return;
    };
    let before = problems.len();
    if let Err(message) = check_ref(member, "") {
        problems.push(at, format!("{message} (a `g` line binds a user or group to a role)"));
    }
    if let Err(message) = check_role(role) {
        problems.push(at, message);
    }
    if problems.len() != before {
        return;
    }
    let id = rbac.role_id(role);
    let roles = rbac.members.entry(member.into()).or_default();
    if !roles.contains(&id) {
        roles.push(id);
        roles.sort_unstable();
    }
}
