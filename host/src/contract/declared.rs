//! The settings a policy declares it reads (its `describe.settings` export), and the check of a
//! handle's extra settings against them.
//!
//! A policy's own options travel as text (`Settings::extra`), so a typo (`max-tokns`) or a value
//! it cannot use (`max-tokens=abc`) would otherwise reach it at every call and be ignored at
//! best. The host checks them once, when a handle is built, when a policy is swapped in, and in
//! `agent-memory policy check`, and refuses them with the name and what it accepts.

use crate::settings::SettingsError;

/// A setting a policy reads from [`crate::Settings::extra`], as it declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingSpec {
    /// Its name.
    pub name: String,
    /// The values it accepts.
    pub accepts: SettingKind,
    /// What it does, in a sentence.
    pub description: String,
}

/// The values a declared setting accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingKind {
    /// `true` or `false`.
    Boolean,
    /// A whole number from `min` to `max`, inclusive.
    Integer {
        /// The smallest value accepted.
        min: i64,
        /// The largest value accepted.
        max: i64,
    },
    /// One of these words.
    OneOf(Vec<String>),
    /// Any text.
    Text,
}

impl SettingKind {
    /// Whether `value` is one of the values accepted. Integers are read as Rust reads them:
    /// optional sign, decimal digits, no spaces.
    pub fn accepts(&self, value: &str) -> bool {
        match self {
            Self::Boolean => matches!(value, "true" | "false"),
            Self::Integer { min, max } => value
                .parse::<i64>()
                .is_ok_and(|number| (*min..=*max).contains(&number)),
            Self::OneOf(words) => words.iter().any(|word| word == value),
            Self::Text => true,
        }
    }
}

impl std::fmt::Display for SettingKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Boolean => f.write_str("true or false"),
            Self::Integer { min, max } if *max == i64::MAX => {
                write!(f, "a whole number of at least {min}")
            }
            Self::Integer { min, max } => write!(f, "a whole number from {min} to {max}"),
            Self::OneOf(words) => write!(f, "one of {}", words.join(", ")),
            Self::Text => f.write_str("any text"),
        }
    }
}

/// Whether a policy's own declaration is usable: names unique and not empty, ranges not
/// empty, word lists not empty. A declaration that is not is a broken policy.
pub(crate) fn check_declaration(declared: &[SettingSpec]) -> Result<(), String> {
    for (index, spec) in declared.iter().enumerate() {
        if spec.name.is_empty() {
            return Err("declares a setting with an empty name".to_string());
        }
        if declared[..index].iter().any(|seen| seen.name == spec.name) {
            return Err(format!("declares the setting `{}` twice", spec.name));
        }
        match &spec.accepts {
            SettingKind::Integer { min, max } if min > max => {
                return Err(format!(
                    "declares the setting `{}` with an empty range {min}..={max}",
                    spec.name
                ));
            }
            SettingKind::OneOf(words) if words.is_empty() => {
                return Err(format!(
                    "declares the setting `{}` with no accepted value",
                    spec.name
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Check `extra` settings against what the policy `origin` declares: every name declared,
/// given once, with a value its declaration accepts.
pub(crate) fn check(
    declared: &[SettingSpec],
    extra: &[(String, String)],
    origin: &str,
) -> Result<(), SettingsError> {
    for (index, (name, value)) in extra.iter().enumerate() {
        if extra[..index].iter().any(|(seen, _)| seen == name) {
            return Err(SettingsError::RepeatedSetting(name.clone()));
        }
        let Some(spec) = declared.iter().find(|spec| spec.name == *name) else {
            return Err(SettingsError::UnknownSetting {
                name: name.clone(),
                policy: origin.to_string(),
                known: declared.iter().map(|spec| spec.name.clone()).collect(),
            });
        };
        if !spec.accepts.accepts(value) {
            return Err(SettingsError::InvalidSetting {
                name: name.clone(),
                value: value.clone(),
                accepts: spec.accepts.to_string(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool_safe_like() -> Vec<SettingSpec> {
        vec![
            SettingSpec {
                name: "max-tokens".into(),
                accepts: SettingKind::Integer {
                    min: 1,
                    max: i64::MAX,
                },
                description: String::new(),
            },
            SettingSpec {
                name: "report-evicted".into(),
                accepts: SettingKind::Boolean,
                description: String::new(),
            },
        ]
    }

    fn extra(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn a_typo_is_refused_with_the_names_the_policy_reads() {
        let error = check(
            &tool_safe_like(),
            &extra(&[("max-tokns", "100")]),
            "tool-safe",
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "policy tool-safe reads no setting `max-tokns`; it reads: max-tokens, report-evicted"
        );
    }

    #[test]
    fn a_setting_given_to_a_policy_that_reads_none_is_refused() {
        let error = check(&[], &extra(&[("max-tokens", "100")]), "default").unwrap_err();
        assert_eq!(
            error.to_string(),
            "policy default reads no setting `max-tokens`; it reads none"
        );
    }

    #[test]
    fn values_out_of_what_a_setting_accepts_are_refused_with_what_it_accepts() {
        for (name, value, accepts) in [
            ("max-tokens", "0", "a whole number of at least 1"),
            ("max-tokens", "abc", "a whole number of at least 1"),
            ("max-tokens", " 5", "a whole number of at least 1"),
            ("report-evicted", "yes", "true or false"),
        ] {
            let error = check(&tool_safe_like(), &extra(&[(name, value)]), "p").unwrap_err();
            assert_eq!(
                error,
                SettingsError::InvalidSetting {
                    name: name.into(),
                    value: value.into(),
                    accepts: accepts.into()
                }
            );
        }
        assert!(
            check(
                &tool_safe_like(),
                &extra(&[("max-tokens", "120"), ("report-evicted", "true")]),
                "p"
            )
            .is_ok()
        );
    }

    #[test]
    fn a_setting_given_twice_is_refused() {
        let error = check(
            &tool_safe_like(),
            &extra(&[("max-tokens", "1"), ("max-tokens", "2")]),
            "p",
        )
        .unwrap_err();
        assert_eq!(error, SettingsError::RepeatedSetting("max-tokens".into()));
    }

    #[test]
    fn broken_declarations_are_named() {
        let mut twice = tool_safe_like();
        twice.push(twice[0].clone());
        assert!(check_declaration(&twice).unwrap_err().contains("twice"));
        let empty_range = [SettingSpec {
            name: "n".into(),
            accepts: SettingKind::Integer { min: 2, max: 1 },
            description: String::new(),
        }];
        assert!(check_declaration(&empty_range).is_err());
        assert!(check_declaration(&tool_safe_like()).is_ok());
    }
}
