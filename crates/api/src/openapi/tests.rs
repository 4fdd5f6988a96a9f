//! Tests of the generated OpenAPI documents: the shapes kubectl relies on.

use super::*;

fn patch_op<'a>(doc: &'a Value, path: &str) -> &'a Value {
    &doc["paths"][path]["patch"]
}

#[test]
fn index_lists_every_group_version_with_a_hash() {
    let index = v3_index();
    let paths = index["paths"].as_object().unwrap();
    for gv in registry::group_versions() {
        let key = v3_key(gv.group, gv.version);
        let url = paths[&key]["serverRelativeURL"].as_str().unwrap();
        let hash = &v3_group_version_document(&key).unwrap().hash;
        assert_eq!(url, format!("/openapi/v3/{key}?hash={hash}"));
    }
    assert!(v3_group_version("apis/nope/v1").is_none());
}

#[test]
fn patch_operations_declare_field_validation_and_strategic_merge() {
    let doc = v3_group_version("api/v1").unwrap();
    let op = patch_op(&doc, "/api/v1/namespaces/{namespace}/pods/{name}");
    assert_eq!(op["x-kubernetes-group-version-kind"], gvk("", "v1", "Pod"));
    let names: Vec<&str> = op["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"fieldValidation"));
    assert!(names.contains(&"dryRun"));
    assert!(op["requestBody"]["content"]
        .get("application/strategic-merge-patch+json")
        .is_some());
    let apps = v3_group_version("apis/apps/v1").unwrap();
    let op = patch_op(
        &apps,
        "/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
    );
    assert_eq!(op["operationId"], "patchAppsV1NamespacedDeployment");
    let nodes = patch_op(&doc, "/api/v1/nodes/{name}");
    assert_eq!(nodes["operationId"], "patchCoreV1Node");
}

#[test]
fn schemas_carry_descriptions_kinds_and_patch_keys() {
    let doc = v3_group_version("api/v1").unwrap();
    let schemas = &doc["components"]["schemas"];
    let pod = &schemas["io.k8s.api.core.v1.Pod"];
    assert_eq!(
        pod["x-kubernetes-group-version-kind"],
        json!([gvk("", "v1", "Pod")])
    );
    assert!(pod["description"].as_str().unwrap().starts_with("Pod is"));
    assert_eq!(
        pod["properties"]["spec"]["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.api.core.v1.PodSpec"
    );
    let containers = &schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
    let volumes = &schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["volumes"];
    assert_eq!(volumes["x-kubernetes-patch-strategy"], "merge,retainKeys");
    assert_eq!(
        schemas["io.k8s.api.core.v1.PodSpec"]["required"],
        json!(["containers"])
    );
    assert_eq!(
        schemas["io.k8s.api.core.v1.PodList"]["x-kubernetes-group-version-kind"],
        json!([gvk("", "v1", "PodList")])
    );
    assert_eq!(
        schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"],
        "int-or-string"
    );
    // every reference resolves inside the document
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    for r in refs {
        assert!(schemas.get(&r).is_some(), "dangling ref {r}");
    }
}

#[test]
fn group_documents_hold_only_their_kinds() {
    let apps = v3_group_version("apis/apps/v1").unwrap();
    let schemas = apps["components"]["schemas"].as_object().unwrap();
    assert!(schemas.contains_key("io.k8s.api.apps.v1.Deployment"));
    assert!(schemas.contains_key("io.k8s.api.core.v1.PodSpec"));
    assert!(schemas.contains_key("io.k8s.api.autoscaling.v1.Scale"));
    assert!(!schemas.contains_key("io.k8s.api.core.v1.Pod"));
    let strategy = &schemas["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"];
    assert_eq!(strategy["x-kubernetes-patch-strategy"], "retainKeys");
}

#[test]
fn v2_uses_definitions_and_plain_refs() {
    let doc = v2();
    assert_eq!(doc["swagger"], "2.0");
    let spec = &doc["definitions"]["io.k8s.api.core.v1.Pod"]["properties"]["spec"];
    assert_eq!(spec["$ref"], "#/definitions/io.k8s.api.core.v1.PodSpec");
    assert!(spec.get("allOf").is_none());
    let text = String::from_utf8(v2_bytes().0.to_vec()).unwrap();
    assert!(!text.contains("#/components/"));
    let op = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    assert!(op["consumes"]
        .as_array()
        .unwrap()
        .contains(&json!("application/strategic-merge-patch+json")));
    assert!(op["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "fieldValidation" && p["in"] == "query"));
}

/// Writes every document under `$OPENAPI_DUMP_DIR` (when set) for checks with a real kubectl.
#[test]
fn dump_documents_when_asked() {
    let Ok(dir) = std::env::var("OPENAPI_DUMP_DIR") else {
        return;
    };
    let dir = std::path::Path::new(&dir);
    std::fs::create_dir_all(dir.join("v3")).unwrap();
    std::fs::write(dir.join("v3-index.json"), &*v3_index_document().bytes).unwrap();
    for gv in registry::group_versions() {
        let key = v3_key(gv.group, gv.version);
        let file = dir
            .join("v3")
            .join(format!("{}.json", key.replace('/', "__")));
        std::fs::write(file, &*v3_group_version_document(&key).unwrap().bytes).unwrap();
    }
    std::fs::write(dir.join("v2.json"), &*v2_document().bytes).unwrap();
    std::fs::write(dir.join("v2.pb"), &*v2_protobuf().bytes).unwrap();
}

#[test]
fn v2_protobuf_starts_with_the_swagger_version() {
    let doc = v2_protobuf();
    // field 1 (swagger), wire type 2, length 3, "2.0"
    assert_eq!(&doc.bytes[..5], &[0x0a, 3, b'2', b'.', b'0']);
    assert!(doc.bytes.len() > 100_000);
    assert!(accepts_v2_protobuf(
        "application/com.github.proto-openapi.spec.v2@v1.0+protobuf, application/json"
    ));
    assert!(!accepts_v2_protobuf("application/json"));
}

#[test]
fn enum_fields_list_their_values() {
    let doc = v3_group_version("api/v1").unwrap();
    let policy = &doc["components"]["schemas"]["io.k8s.api.core.v1.Container"]["properties"]
        ["imagePullPolicy"];
    assert_eq!(policy["enum"], json!(["Always", "IfNotPresent", "Never"]));
    let desc = policy["description"].as_str().unwrap();
    assert!(desc.starts_with("Image pull policy."));
    assert!(desc.contains("\n\nPossible enum values:\n - `\"Always\"` means that kubelet"));
    assert!(policy.get("x-description-suffix").is_none());
}
