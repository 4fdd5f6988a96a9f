//! Levels, versions and the per-namespace policy, as upstream's
//! `staging/src/k8s.io/pod-security-admission/api/{constants.go,helpers.go}` define them:
//! `ParseLevel`, `ParseVersion`, `LevelVersion`, `Policy` and `PolicyToEvaluate` (the
//! `pod-security.kubernetes.io/{enforce,audit,warn}[-version]` labels, with upstream's handling
//! of invalid values and its field-error texts).

use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};

use crate::pod::go_quote;

/// Prefix of the namespace labels, and of the audit annotations the admission plugin adds.
pub const LABEL_PREFIX: &str = "pod-security.kubernetes.io/";
/// `pod-security.kubernetes.io/enforce`
pub const ENFORCE_LEVEL_LABEL: &str = "pod-security.kubernetes.io/enforce";
/// `pod-security.kubernetes.io/enforce-version`
pub const ENFORCE_VERSION_LABEL: &str = "pod-security.kubernetes.io/enforce-version";
/// `pod-security.kubernetes.io/audit`
pub const AUDIT_LEVEL_LABEL: &str = "pod-security.kubernetes.io/audit";
/// `pod-security.kubernetes.io/audit-version`
pub const AUDIT_VERSION_LABEL: &str = "pod-security.kubernetes.io/audit-version";
/// `pod-security.kubernetes.io/warn`
pub const WARN_LEVEL_LABEL: &str = "pod-security.kubernetes.io/warn";
/// `pod-security.kubernetes.io/warn-version`
pub const WARN_VERSION_LABEL: &str = "pod-security.kubernetes.io/warn-version";
/// Audit annotation key (after the prefix) naming why a request was exempt.
pub const EXEMPTION_REASON_ANNOTATION_KEY: &str = "exempt";
/// Audit annotation key (after the prefix) holding the audit-mode violations.
pub const AUDIT_VIOLATIONS_ANNOTATION_KEY: &str = "audit-violations";
/// Audit annotation key (after the prefix) holding the enforced `level:version`.
pub const ENFORCED_POLICY_ANNOTATION_KEY: &str = "enforce-policy";

/// A Pod Security Standards level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Level {
    /// No restrictions.
    #[default]
    Privileged,
    /// Prevents known privilege escalations.
    Baseline,
    /// Hardened best practice.
    Restricted,
}

impl Level {
    /// The label value: `privileged`, `baseline` or `restricted`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a level or version label value was rejected; the texts are upstream's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not one of the three levels (upstream falls back to `restricted` for enforce).
    #[error("must be one of privileged, baseline, restricted")]
    Level,
    /// Not `latest` nor `v1.<minor>` (upstream falls back to `latest`).
    #[error("must be \"latest\" or \"v1.x\"")]
    Version,
}

impl FromStr for Level {
    type Err = ParseError;

    /// Upstream's `ParseLevel`: exact, case-sensitive.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "privileged" => Ok(Level::Privileged),
            "baseline" => Ok(Level::Baseline),
            "restricted" => Ok(Level::Restricted),
            _ => Err(ParseError::Level),
        }
    }
}

/// A policy version: `v1.<minor>` or `latest`, which is newer than every `v1.x`.
///
/// The derived order puts every `V1` before `Latest` and orders `V1` by minor, which is
/// upstream's `Version.Older`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Version {
    /// `v1.<minor>`.
    V1(u64),
    /// `latest`: the newest checks this crate knows.
    #[default]
    Latest,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::V1(minor) => write!(f, "v1.{minor}"),
            Version::Latest => f.write_str("latest"),
        }
    }
}

impl FromStr for Version {
    type Err = ParseError;

    /// Upstream's `ParseVersion`: `latest`, or `^v1\.([0-9]|[1-9][0-9]*)$` whose minor fits a
    /// Go `int` (strconv.Atoi).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "latest" {
            return Ok(Version::Latest);
        }
        let digits = s.strip_prefix("v1.").ok_or(ParseError::Version)?;
        let well_formed = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (digits == "0" || !digits.starts_with('0'));
        if !well_formed {
            return Err(ParseError::Version);
        }
        match digits.parse::<u64>() {
            Ok(minor) if minor <= i64::MAX as u64 => Ok(Version::V1(minor)),
            _ => Err(ParseError::Version),
        }
    }
}

/// A level at a version, printed `level:version` (`baseline:latest`, `restricted:v1.24`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct LevelVersion {
    /// The level.
    pub level: Level,
    /// The version of the level's checks.
    pub version: Version,
}

impl LevelVersion {
    /// Shorthand constructor.
    pub fn new(level: Level, version: Version) -> Self {
        LevelVersion { level, version }
    }

    /// Upstream's `Equivalent`: both privileged (any versions), or same level and version.
    pub fn equivalent(&self, other: &LevelVersion) -> bool {
        (self.level == Level::Privileged && other.level == Level::Privileged) || self == other
    }
}

impl fmt::Display for LevelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.level, self.version)
    }
}

/// The three modes a namespace's labels set. The default is privileged:latest for all three,
/// upstream's default `PodSecurityConfiguration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Policy {
    /// Pods that violate it are rejected.
    pub enforce: LevelVersion,
    /// Violations are recorded in the audit annotation `audit-violations`.
    pub audit: LevelVersion,
    /// Violations are returned as warnings.
    pub warn: LevelVersion,
}

impl Policy {
    /// All three modes privileged (versions ignored).
    pub fn fully_privileged(&self) -> bool {
        self.enforce.level == Level::Privileged
            && self.audit.level == Level::Privileged
            && self.warn.level == Level::Privileged
    }

    /// Upstream's `Equivalent`: every mode equivalent.
    pub fn equivalent(&self, other: &Policy) -> bool {
        self.enforce.equivalent(&other.enforce)
            && self.audit.equivalent(&other.audit)
            && self.warn.equivalent(&other.warn)
    }
}

/// An invalid pod-security label: upstream's `field.Invalid(metadata.labels[<key>], value,
/// detail)`. `to_string()` gives `metadata.labels[<key>]: Invalid value: "<value>": <detail>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelError {
    /// `metadata.labels[pod-security.kubernetes.io/enforce]`
    pub field: String,
    /// The value as Go renders it in a field error: quoted for strings (`"foo"`), bare JSON
    /// for a label value of another type.
    pub value: String,
    /// The parse error.
    pub error: ParseError,
}

impl LabelError {
    /// The Status cause type: `FieldValueInvalid`.
    pub fn reason(&self) -> &'static str {
        "FieldValueInvalid"
    }

    /// The message after the field, as in a Status cause: `Invalid value: "foo": must be ...`.
    pub fn message(&self) -> String {
        format!("Invalid value: {}: {}", self.value, self.error)
    }
}

impl fmt::Display for LabelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message())
    }
}

/// Upstream's `utilerrors.NewAggregate(...).Error()` over field errors as
/// `ErrorList.ToAggregate` builds it: duplicates dropped, one message bare, several as
/// `[a, b]`. Empty input gives an empty string.
pub fn aggregate_messages<T: fmt::Display>(errors: &[T]) -> String {
    let mut seen: Vec<String> = Vec::new();
    for e in errors {
        let msg = e.to_string();
        if !seen.contains(&msg) {
            seen.push(msg);
        }
    }
    match seen.len() {
        0 => String::new(),
        1 => seen.remove(0),
        _ => format!("[{}]", seen.join(", ")),
    }
}

fn label_error(key: &str, value: &Value, error: ParseError) -> LabelError {
    let rendered = match value {
        Value::String(s) => go_quote(s),
        other => other.to_string(),
    };
    LabelError {
        field: format!("metadata.labels[{key}]"),
        value: rendered,
        error,
    }
}

fn parse_label<T: FromStr<Err = ParseError>>(
    labels: &Map<String, Value>,
    key: &str,
    errors: &mut Vec<LabelError>,
) -> Option<Result<T, ParseError>> {
    let value = labels.get(key)?;
    let parsed = match value {
        Value::String(s) => s.parse::<T>(),
        // A label value that is not a string is no level or version: the empty string gives
        // the matching parse error.
        _ => "".parse::<T>(),
    };
    if let Err(e) = &parsed {
        errors.push(label_error(key, value, *e));
    }
    Some(parsed)
}

/// Upstream's `PolicyToEvaluate`: the policy a namespace's labels set over `defaults`, and the
/// invalid labels in upstream's order (enforce, enforce-version, audit, audit-version, warn,
/// warn-version).
///
/// Invalid values: an invalid enforce level fails closed to `restricted`; invalid audit and
/// warn levels fail open to `privileged`; an invalid version is `latest`. When the warn level
/// label is absent and a valid enforce level is stricter than the warn level, warn takes the
/// enforce level (and the enforce version unless a warn version label is set).
pub fn parse_policy(labels: &Map<String, Value>, defaults: &Policy) -> (Policy, Vec<LabelError>) {
    let mut p = *defaults;
    let mut errors = Vec::new();
    if labels.is_empty() {
        return (p, errors);
    }
    let mut has_enforce_level = false;
    if let Some(r) = parse_label::<Level>(labels, ENFORCE_LEVEL_LABEL, &mut errors) {
        has_enforce_level = r.is_ok();
        p.enforce.level = r.unwrap_or(Level::Restricted);
    }
    if let Some(r) = parse_label::<Version>(labels, ENFORCE_VERSION_LABEL, &mut errors) {
        p.enforce.version = r.unwrap_or(Version::Latest);
    }
    if let Some(r) = parse_label::<Level>(labels, AUDIT_LEVEL_LABEL, &mut errors) {
        p.audit.level = r.unwrap_or(Level::Privileged);
    }
    if let Some(r) = parse_label::<Version>(labels, AUDIT_VERSION_LABEL, &mut errors) {
        p.audit.version = r.unwrap_or(Version::Latest);
    }
    let mut has_warn_level = false;
    if let Some(r) = parse_label::<Level>(labels, WARN_LEVEL_LABEL, &mut errors) {
        has_warn_level = true;
        p.warn.level = r.unwrap_or(Level::Privileged);
    }
    let mut has_warn_version = false;
    if let Some(r) = parse_label::<Version>(labels, WARN_VERSION_LABEL, &mut errors) {
        has_warn_version = true;
        p.warn.version = r.unwrap_or(Version::Latest);
    }
    if !has_warn_level && has_enforce_level && p.enforce.level > p.warn.level {
        p.warn.level = p.enforce.level;
        if !has_warn_version {
            p.warn.version = p.enforce.version;
        }
    }
    (p, errors)
}

/// The policy a namespace's labels set over the default policy (privileged:latest in every
/// mode), and the problems with the labels as upstream words them:
/// `metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "foo": must be one of
/// privileged, baseline, restricted`.
pub fn policy_from_labels(labels: &Map<String, Value>) -> (Policy, Vec<String>) {
    let (policy, errors) = parse_policy(labels, &Policy::default());
    (policy, errors.iter().map(ToString::to_string).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(kvs: &[(&str, &str)]) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("other-label".into(), json!("foo-bar"));
        for (k, v) in kvs {
            m.insert(format!("{LABEL_PREFIX}{k}"), json!(v));
        }
        m
    }

    fn lv(level: Level, version: Version) -> LevelVersion {
        LevelVersion::new(level, version)
    }

    const PRIV: LevelVersion = LevelVersion {
        level: Level::Privileged,
        version: Version::Latest,
    };

    #[test]
    fn parse_version_matches_upstream() {
        for (s, v) in [
            ("latest", Version::Latest),
            ("v1.0", Version::V1(0)),
            ("v1.1", Version::V1(1)),
            ("v1.20", Version::V1(20)),
            ("v1.10000", Version::V1(10000)),
        ] {
            assert_eq!(s.parse::<Version>(), Ok(v), "{s}");
        }
        for s in [
            "foo",
            "",
            "v2.0",
            "v1",
            "1.1",
            "v1.",
            "v1.01",
            "v1.-1",
            "v1.+1",
            "V1.1",
            "v1.1 ",
            "v1.99999999999999999999",
            "v1.9223372036854775808",
        ] {
            assert_eq!(s.parse::<Version>(), Err(ParseError::Version), "{s:?}");
        }
        assert_eq!(
            "v1.9223372036854775807".parse::<Version>(),
            Ok(Version::V1(i64::MAX as u64))
        );
    }

    #[test]
    fn version_order_and_display() {
        assert!(Version::V1(0) < Version::V1(1));
        assert!(Version::V1(10000) < Version::Latest);
        assert_eq!(Version::V1(24).to_string(), "v1.24");
        assert_eq!(
            lv(Level::Restricted, Version::Latest).to_string(),
            "restricted:latest"
        );
        assert_eq!(
            lv(Level::Baseline, Version::V1(0)).to_string(),
            "baseline:v1.0"
        );
    }

    #[test]
    fn parse_level_is_exact() {
        assert_eq!("baseline".parse::<Level>(), Ok(Level::Baseline));
        for s in ["Baseline", "", "unknown", " restricted"] {
            assert_eq!(s.parse::<Level>(), Err(ParseError::Level));
        }
    }

    #[test]
    fn level_version_equivalence() {
        let versions = [Version::Latest, Version::V1(18), Version::V1(30)];
        let levels = [Level::Privileged, Level::Baseline, Level::Restricted];
        for l in levels {
            for v in versions {
                assert!(lv(l, v).equivalent(&lv(l, v)));
            }
        }
        for l1 in levels {
            for l2 in levels {
                if l1 != l2 {
                    assert!(!lv(l1, Version::Latest).equivalent(&lv(l2, Version::Latest)));
                }
            }
        }
        for v1 in versions {
            for v2 in [Version::V1(16), Version::V1(13)] {
                for l in [Level::Baseline, Level::Restricted] {
                    assert!(!lv(l, v1).equivalent(&lv(l, v2)));
                }
                assert!(lv(Level::Privileged, v1).equivalent(&lv(Level::Privileged, v2)));
            }
        }
    }

    #[test]
    fn policy_equivalence() {
        let privileged = Policy::default();
        assert!(privileged.fully_privileged());
        let mut privileged2 = privileged;
        privileged2.enforce.version = Version::V1(20);
        assert!(privileged2.fully_privileged());
        let mut baseline = privileged;
        baseline.audit.level = Level::Baseline;
        assert!(!baseline.fully_privileged());
        assert!(privileged.equivalent(&privileged2));
        assert!(baseline.equivalent(&baseline));
        assert!(!privileged.equivalent(&baseline));
    }

    #[test]
    fn policy_to_evaluate_cases() {
        let b = Level::Baseline;
        let r = Level::Restricted;
        let latest = Version::Latest;
        type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Policy, bool);
        let cases: Vec<Case<'_>> = vec![
            (
                "simple enforce",
                vec![("enforce", "baseline")],
                Policy {
                    enforce: lv(b, latest),
                    warn: lv(b, latest),
                    audit: PRIV,
                },
                false,
            ),
            (
                "simple warn",
                vec![("warn", "restricted")],
                Policy {
                    enforce: PRIV,
                    warn: lv(r, latest),
                    audit: PRIV,
                },
                false,
            ),
            (
                "simple audit",
                vec![("audit", "baseline")],
                Policy {
                    enforce: PRIV,
                    warn: PRIV,
                    audit: lv(b, latest),
                },
                false,
            ),
            (
                "enforce & warn",
                vec![("enforce", "baseline"), ("warn", "restricted")],
                Policy {
                    enforce: lv(b, latest),
                    warn: lv(r, latest),
                    audit: PRIV,
                },
                false,
            ),
            (
                "enforce version",
                vec![("enforce", "baseline"), ("enforce-version", "v1.22")],
                Policy {
                    enforce: lv(b, Version::V1(22)),
                    warn: lv(b, Version::V1(22)),
                    audit: PRIV,
                },
                false,
            ),
            (
                "enforce version & warn-version",
                vec![
                    ("enforce", "baseline"),
                    ("enforce-version", "v1.22"),
                    ("warn-version", "latest"),
                ],
                Policy {
                    enforce: lv(b, Version::V1(22)),
                    warn: lv(b, latest),
                    audit: PRIV,
                },
                false,
            ),
            (
                "enforce & warn-version",
                vec![("enforce", "baseline"), ("warn-version", "v1.23")],
                Policy {
                    enforce: lv(b, latest),
                    warn: lv(b, Version::V1(23)),
                    audit: PRIV,
                },
                false,
            ),
            (
                "fully specd",
                vec![
                    ("enforce", "baseline"),
                    ("enforce-version", "v1.20"),
                    ("warn", "restricted"),
                    ("warn-version", "v1.21"),
                    ("audit", "restricted"),
                    ("audit-version", "v1.22"),
                ],
                Policy {
                    enforce: lv(b, Version::V1(20)),
                    warn: lv(r, Version::V1(21)),
                    audit: lv(r, Version::V1(22)),
                },
                false,
            ),
            (
                "enforce no warn",
                vec![("enforce", "baseline"), ("warn", "privileged")],
                Policy {
                    enforce: lv(b, latest),
                    warn: PRIV,
                    audit: PRIV,
                },
                false,
            ),
            (
                "enforce warn error",
                vec![("enforce", "baseline"), ("warn", "foo")],
                Policy {
                    enforce: lv(b, latest),
                    warn: PRIV,
                    audit: PRIV,
                },
                true,
            ),
            (
                "enforce error",
                vec![("enforce", "foo")],
                Policy {
                    enforce: lv(r, latest),
                    warn: PRIV,
                    audit: PRIV,
                },
                true,
            ),
        ];
        for (desc, kvs, expect, expect_err) in cases {
            let (p, errs) = parse_policy(&labels(&kvs), &Policy::default());
            assert_eq!(p, expect, "{desc}");
            assert_eq!(!errs.is_empty(), expect_err, "{desc}: {errs:?}");
        }
    }

    #[test]
    fn label_error_texts() {
        let (p, problems) = policy_from_labels(&labels(&[
            ("enforce", "unknown"),
            ("enforce-version", "v2.0"),
            ("audit", "Baseline"),
            ("warn-version", "1.2"),
        ]));
        assert_eq!(p.enforce, lv(Level::Restricted, Version::Latest));
        assert_eq!(p.audit.level, Level::Privileged);
        assert_eq!(
            problems,
            vec![
                r#"metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "unknown": must be one of privileged, baseline, restricted"#,
                r#"metadata.labels[pod-security.kubernetes.io/enforce-version]: Invalid value: "v2.0": must be "latest" or "v1.x""#,
                r#"metadata.labels[pod-security.kubernetes.io/audit]: Invalid value: "Baseline": must be one of privileged, baseline, restricted"#,
                r#"metadata.labels[pod-security.kubernetes.io/warn-version]: Invalid value: "1.2": must be "latest" or "v1.x""#,
            ]
        );
        // An invalid enforce level does not raise warn to restricted.
        assert_eq!(p.warn, PRIV);
    }

    #[test]
    fn non_string_label_values_are_invalid() {
        let mut m = Map::new();
        m.insert(ENFORCE_LEVEL_LABEL.into(), json!(5));
        m.insert(WARN_VERSION_LABEL.into(), Value::Null);
        let (p, errs) = parse_policy(&m, &Policy::default());
        assert_eq!(p.enforce.level, Level::Restricted);
        assert_eq!(p.warn.version, Version::Latest);
        assert_eq!(errs.len(), 2);
        assert_eq!(
            errs[0].message(),
            "Invalid value: 5: must be one of privileged, baseline, restricted"
        );
        assert_eq!(
            errs[1].message(),
            "Invalid value: null: must be \"latest\" or \"v1.x\""
        );
    }

    #[test]
    fn defaults_apply_when_labels_absent() {
        let defaults = Policy {
            enforce: lv(Level::Baseline, Version::V1(23)),
            audit: lv(Level::Restricted, Version::Latest),
            warn: lv(Level::Restricted, Version::Latest),
        };
        assert_eq!(parse_policy(&Map::new(), &defaults), (defaults, vec![]));
        let (p, _) = parse_policy(&labels(&[("enforce", "privileged")]), &defaults);
        assert_eq!(p.enforce, lv(Level::Privileged, Version::V1(23)));
        assert_eq!(p.warn, defaults.warn);
    }

    #[test]
    fn aggregate_dedups_and_brackets() {
        assert_eq!(aggregate_messages::<String>(&[]), "");
        assert_eq!(aggregate_messages(&["a"]), "a");
        assert_eq!(aggregate_messages(&["a", "b", "a"]), "[a, b]");
        assert_eq!(aggregate_messages(&["a", "a"]), "a");
    }
}
