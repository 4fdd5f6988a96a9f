//! List and watch filters: a namespace-independent label and field selector pair, parsed once
//! per request and matched against objects.

use api::selectors::{FieldSelector, Selector};
use api::ResourceInfo;
use serde_json::Value;

use crate::error::ApiError;
use crate::request::Query;

/// The `labelSelector` and `fieldSelector` of a request.
pub struct Filter {
    resource: &'static ResourceInfo,
    labels: Option<Selector>,
    fields: Option<FieldSelector>,
}

impl Filter {
    /// Parses the selectors of a query; malformed or unsupported ones are a 400.
    pub fn from_query(resource: &'static ResourceInfo, query: &Query) -> Result<Filter, ApiError> {
        let labels = match query.get("labelSelector").filter(|s| !s.trim().is_empty()) {
            Some(s) => Some(Selector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?),
            None => None,
        };
        let fields = match query.get("fieldSelector").filter(|s| !s.trim().is_empty()) {
            Some(s) => {
                let f =
                    FieldSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?;
                f.validate(resource)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
                Some(f)
            }
            None => None,
        };
        Ok(Filter {
            resource,
            labels,
            fields,
        })
    }

    /// True when the filter selects everything.
    pub fn is_everything(&self) -> bool {
        self.labels.is_none() && self.fields.is_none()
    }

    /// Whether an object passes both selectors.
    pub fn matches(&self, obj: &Value) -> bool {
        if let Some(l) = &self.labels {
            if !l.matches_object(obj) {
                return false;
            }
        }
        if let Some(f) = &self.fields {
            if !f.matches(obj, self.resource).unwrap_or(false) {
                return false;
            }
        }
        true
    }
}

/// The string form of a metav1.LabelSelector value (`app=web,tier in (a,b)`), as the scale
/// subresource reports it.
pub fn selector_string(selector: &Value) -> String {
    Selector::from_value(Some(selector))
        .map(|s| s.to_string())
        .unwrap_or_default()
}
