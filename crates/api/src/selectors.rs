//! Label selectors (`=`, `==`, `!=`, `in`, `notin`, exists, `!`) and field selectors, parsed
//! from their query-string form or from a metav1 LabelSelector, and matched against objects.
