//! PATCH: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and Kubernetes' strategic merge
//! patch with the patch-merge keys of the built-in types.
