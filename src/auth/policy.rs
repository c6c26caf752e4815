//! Which groups may open a door. Groups come from verified token claims only; a door whose
//! policy names no group opens for nobody.

use serde::{Deserialize, Serialize};

use super::jwt::Claims;

/// One door's policy (config section `[doors.NAME]`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DoorPolicy {
    /// Members of any of these groups may open the door.
    pub allowed_groups: Vec<String>,
}

/// What is wrong with `name` as a group name, if anything: Cognito's rule (1 to 128 characters),
/// with no whitespace or control characters, so `""` or `" staff"` can never name a group that a
/// door admits by accident.
pub fn group_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("a group name must not be empty".into());
    }
    if name.chars().count() > 128 {
        return Some(format!("group {name:?} is longer than 128 characters"));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some(format!(
            "group {name:?} contains whitespace or a control character"
        ));
    }
    None
}

impl DoorPolicy {
    /// Every problem of door `name`'s policy, naming its key.
    pub fn problems(&self, name: &str) -> Vec<String> {
        self.allowed_groups
            .iter()
            .filter_map(|group| group_name_problem(group))
            .map(|problem| format!("doors.{name}.allowed_groups: {problem}"))
            .collect()
    }

    /// `Ok(group)` that admits the holder of `claims`, or `Err(reason)`.
    pub fn admits(&self, claims: &Claims) -> Result<String, String> {
        let groups = claims.groups();
        self.allowed_groups
            .iter()
            .find(|allowed| groups.contains(allowed))
            .cloned()
            .ok_or_else(|| {
                format!(
                    "not in a group this door admits (user has [{}], door admits [{}])",
                    groups.join(", "),
                    self.allowed_groups.join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(groups: serde_json::Value) -> Claims {
        Claims(
            json!({ "cognito:groups": groups })
                .as_object()
                .unwrap()
                .clone(),
        )
    }

    #[test]
    fn only_named_groups_are_admitted() {
        let policy = DoorPolicy {
            allowed_groups: vec!["staff".into(), "cleaning".into()],
        };
        assert_eq!(
            policy.admits(&claims(json!(["visitors", "cleaning"]))),
            Ok("cleaning".into())
        );
        assert!(policy.admits(&claims(json!(["visitors"]))).is_err());
        assert!(policy.admits(&claims(json!([]))).is_err());
        assert!(policy.admits(&Claims(Default::default())).is_err());
    }

    #[test]
    fn blank_and_padded_group_names_are_problems() {
        let policy = DoorPolicy {
            allowed_groups: vec!["".into(), " staff".into(), "it".into(), "a\tb".into()],
        };
        let problems = policy.problems("front");
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(
            problems
                .iter()
                .all(|p| p.starts_with("doors.front.allowed_groups"))
        );
        assert_eq!(group_name_problem("cleaners"), None);
    }

    #[test]
    fn a_door_with_no_groups_admits_nobody() {
        assert!(
            DoorPolicy::default()
                .admits(&claims(json!(["staff"])))
                .is_err()
        );
    }
}
