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

impl DoorPolicy {
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
    fn a_door_with_no_groups_admits_nobody() {
        assert!(
            DoorPolicy::default()
                .admits(&claims(json!(["staff"])))
                .is_err()
        );
    }
}
