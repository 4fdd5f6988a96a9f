//! User impersonation (`kubectl --as`, `--as-group`, `--as-uid`), as upstream's
//! WithImpersonation filter: the `Impersonate-User`, `Impersonate-Group`, `Impersonate-Uid` and
//! `Impersonate-Extra-<key>` headers replace the requester's identity, each part allowed only if
//! the requester may `impersonate` it (users, groups, serviceaccounts, uids, userextras/<key>).

use auth::{names, Attributes, Decision, UserInfo};
use http::HeaderMap;

use crate::error::ApiError;

/// What the headers ask to become.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requested {
    /// `Impersonate-User`.
    pub user: String,
    /// `Impersonate-Group` (repeatable).
    pub groups: Vec<String>,
    /// `Impersonate-Uid`.
    pub uid: String,
    /// `Impersonate-Extra-<key>` (percent-decoded keys).
    pub extra: Vec<(String, String)>,
}

/// The impersonation the headers ask for, if any; 400 when they are inconsistent (groups,
/// uid or extras without a user).
pub fn requested(headers: &HeaderMap) -> Result<Option<Requested>, ApiError> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect()
    };
    let user = values("impersonate-user")
        .into_iter()
        .next()
        .unwrap_or_default();
    let groups = values("impersonate-group");
    let uid = values("impersonate-uid")
        .into_iter()
        .next()
        .unwrap_or_default();
    let mut extra = Vec::new();
    for (name, value) in headers {
        if let Some(key) = name.as_str().strip_prefix("impersonate-extra-") {
            let key = percent_decode(key);
            if let Ok(v) = value.to_str() {
                extra.push((key, v.to_string()));
            }
        }
    }
    if user.is_empty() {
        if !groups.is_empty() || !uid.is_empty() || !extra.is_empty() {
            return Err(ApiError::bad_request(
                "requested impersonation of user extras, uid or groups without impersonating a user",
            ));
        }
        return Ok(None);
    }
    Ok(Some(Requested {
        user,
        groups,
        uid,
        extra,
    }))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Checks that `requester` may impersonate every part of `want` (asking `authorize`), and
/// returns the identity the request then has; 403 with upstream's message otherwise.
pub fn impersonate(
    requester: &UserInfo,
    want: Requested,
    authorize: impl Fn(&Attributes) -> Decision,
) -> Result<UserInfo, ApiError> {
    let check = |group: &str, resource: &str, subresource: &str, namespace: &str, name: &str| {
        let a = Attributes {
            user: requester.clone(),
            verb: "impersonate".into(),
            resource_request: true,
            namespace: namespace.into(),
            api_group: group.into(),
            resource: resource.into(),
            subresource: subresource.into(),
            name: name.into(),
            ..Default::default()
        };
        match authorize(&a) {
            Decision::Allow(_) => Ok(()),
            Decision::Deny(r) | Decision::NoOpinion(r) => {
                Err(ApiError::forbidden_by_authorizer(&a, &r))
            }
        }
    };
    let mut groups = want.groups.clone();
    match want
        .user
        .strip_prefix(names::SA_PREFIX)
        .and_then(|rest| rest.split_once(':'))
    {
        Some((ns, name)) => {
            check("", "serviceaccounts", "", ns, name)?;
            if groups.is_empty() {
                groups = vec![
                    names::SERVICEACCOUNTS.into(),
                    format!("{}:{ns}", names::SERVICEACCOUNTS),
                ];
            }
        }
        None => check("", "users", "", "", &want.user)?,
    }
    for g in &want.groups {
        check("", "groups", "", "", g)?;
    }
    if !want.uid.is_empty() {
        check("authentication.k8s.io", "uids", "", "", &want.uid)?;
    }
    let mut extra = std::collections::BTreeMap::<String, Vec<String>>::new();
    for (k, v) in &want.extra {
        check("authentication.k8s.io", "userextras", k, "", v)?;
        extra.entry(k.clone()).or_default().push(v.clone());
    }
    // Everyone but the anonymous user is authenticated.
    if want.user == names::ANONYMOUS {
        if !groups.iter().any(|g| g == names::UNAUTHENTICATED) {
            groups.push(names::UNAUTHENTICATED.into());
        }
    } else if !groups.iter().any(|g| g == names::AUTHENTICATED) {
        groups.push(names::AUTHENTICATED.into());
    }
    Ok(UserInfo {
        name: want.user,
        uid: want.uid,
        groups,
        extra,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn headers_are_read_and_groups_without_a_user_refused() {
        assert_eq!(requested(&HeaderMap::new()).unwrap(), None);
        let r = requested(&headers(&[
            ("Impersonate-User", "alice"),
            ("Impersonate-Group", "dev"),
            ("Impersonate-Group", "ops"),
            ("Impersonate-Extra-Scopes%2Fa", "x"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(r.user, "alice");
        assert_eq!(r.groups, vec!["dev", "ops"]);
        assert_eq!(r.extra, vec![("scopes/a".to_string(), "x".to_string())]);
        let e = requested(&headers(&[("Impersonate-Group", "dev")])).unwrap_err();
        assert_eq!(e.code, 400);
    }

    #[test]
    fn each_part_needs_the_impersonate_verb() {
        let bob = UserInfo {
            name: "bob".into(),
            groups: vec!["system:authenticated".into()],
            ..Default::default()
        };
        let want = Requested {
            user: "alice".into(),
            groups: vec!["dev".into()],
            ..Default::default()
        };
        // May impersonate users but not groups.
        let users_only = |a: &Attributes| {
            if a.resource == "users" {
                Decision::Allow(String::new())
            } else {
                Decision::NoOpinion(String::new())
            }
        };
        let e = impersonate(&bob, want.clone(), users_only).unwrap_err();
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            "groups \"dev\" is forbidden: User \"bob\" cannot impersonate resource \"groups\" in API group \"\" at the cluster scope"
        );
        let u = impersonate(&bob, want, |_| Decision::Allow(String::new())).unwrap();
        assert_eq!(u.name, "alice");
        assert_eq!(u.groups, vec!["dev", "system:authenticated"]);
        // A ServiceAccount is checked in its namespace and gets its groups.
        let sa = Requested {
            user: "system:serviceaccount:team:builder".into(),
            ..Default::default()
        };
        let asked = std::cell::RefCell::new(Vec::new());
        let u = impersonate(&bob, sa, |a| {
            asked
                .borrow_mut()
                .push((a.resource.clone(), a.namespace.clone(), a.name.clone()));
            Decision::Allow(String::new())
        })
        .unwrap();
        assert_eq!(
            asked.into_inner(),
            vec![("serviceaccounts".into(), "team".into(), "builder".into())]
        );
        assert_eq!(
            u.groups,
            vec![
                "system:serviceaccounts",
                "system:serviceaccounts:team",
                "system:authenticated"
            ]
        );
    }
}
