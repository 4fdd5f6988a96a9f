//! Reading manifests as `kubectl apply -f` does: files, directories (with -R recursively),
//! `-` for stdin, multi-document YAML, JSON, and `List` kinds expanded to their items. A syntax
//! error names the file and the line.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};

/// One object read from a manifest, with the file it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestObject {
    pub source: String,
    pub object: Value,
}

/// Files a `-f` argument names: the file itself, or the .yaml/.yml/.json files of a directory
/// (its subdirectories too with `recursive`), sorted by name like kubectl.
pub fn expand_paths(arg: &str, recursive: bool) -> Result<Vec<PathBuf>> {
    let path = Path::new(arg);
    let meta = std::fs::metadata(path)
        .map_err(|_| Error::Usage(format!("the path \"{arg}\" does not exist")))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|source| Error::Io {
            path: arg.to_string(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            if recursive {
                out.extend(expand_paths(&entry.to_string_lossy(), true)?);
            }
        } else if matches!(
            entry.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            out.push(entry);
        }
    }
    Ok(out)
}

/// Parses the text of one manifest source into its objects.
pub fn parse(source: &str, text: &str) -> Result<Vec<ManifestObject>> {
    let trimmed = text.trim_start();
    let documents: Vec<Value> = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let mut docs = Vec::new();
        let stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
        for doc in stream {
            docs.push(doc.map_err(|e| Error::Manifest {
                path: source.to_string(),
                message: format!("error converting JSON: line {}: {e}", e.line()),
            })?);
        }
        docs
    } else {
        serde_saphyr::from_multiple::<Value>(text).map_err(|e| {
            let line = e.location().map(|l| l.line()).unwrap_or(0);
            Error::Manifest {
                path: source.to_string(),
                message: format!(
                    "error converting YAML to JSON: yaml: line {line}: {}",
                    e.without_snippet()
                ),
            }
        })?
    };
    let mut out = Vec::new();
    for doc in documents {
        push_objects(source, doc, &mut out)?;
    }
    Ok(out)
}

fn push_objects(source: &str, doc: Value, out: &mut Vec<ManifestObject>) -> Result<()> {
    match doc {
        Value::Null => Ok(()),
        Value::Object(ref map) if map.is_empty() => Ok(()),
        Value::Object(ref map)
            if map
                .get("kind")
                .and_then(Value::as_str)
                .is_some_and(|k| k == "List" || k.ends_with("List"))
                && map.get("items").is_some_and(Value::is_array) =>
        {
            for item in map["items"].as_array().cloned().unwrap_or_default() {
                push_objects(source, item, out)?;
            }
            Ok(())
        }
        Value::Object(map) => {
            for field in ["apiVersion", "kind"] {
                if !map.get(field).is_some_and(Value::is_string) {
                    let name = if field == "kind" {
                        "kind"
                    } else {
                        "apiVersion"
                    };
                    return Err(Error::Manifest {
                        path: source.to_string(),
                        message: format!(
                            "error validating data: [{name} not set]; if you choose to ignore these errors, turn validation off with --validate=false"
                        ),
                    });
                }
            }
            out.push(ManifestObject {
                source: source.to_string(),
                object: Value::Object(map),
            });
            Ok(())
        }
        Value::Array(items) => {
            for item in items {
                push_objects(source, item, out)?;
            }
            Ok(())
        }
        other => Err(Error::Manifest {
            path: source.to_string(),
            message: format!("error converting YAML to JSON: not an object: {other}"),
        }),
    }
}

/// Reads every object the `-f` arguments name, in order.
pub fn read_all(files: &[String], recursive: bool) -> Result<Vec<ManifestObject>> {
    let mut out = Vec::new();
    for arg in files {
        if arg == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|source| Error::Io {
                    path: "STDIN".into(),
                    source,
                })?;
            out.extend(parse("STDIN", &text)?);
            continue;
        }
        for path in expand_paths(arg, recursive)? {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
                path: shown.clone(),
                source,
            })?;
            out.extend(parse(&shown, &text)?);
        }
    }
    if out.is_empty() {
        return Err(Error::Usage("no objects passed to apply".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_yaml_and_lists() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: b\n";
        let objs = parse("f.yaml", text).unwrap();
        let names: Vec<&str> = objs
            .iter()
            .map(|o| o.object["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn json_stream() {
        let text = "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"a\"}}\n{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"s\"}}";
        assert_eq!(parse("f.json", text).unwrap().len(), 2);
    }

    #[test]
    fn syntax_error_names_file_and_line() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n   bad: [\n";
        let err = parse("dir/bad.yaml", text).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "error: error parsing dir/bad.yaml: error converting YAML to JSON: yaml: line "
            ),
            "{err}"
        );
        assert!(!err.contains("line 0:"), "{err}");
    }

    #[test]
    fn missing_kind_is_reported() {
        let err = parse("x.yaml", "apiVersion: v1\nmetadata:\n  name: a\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("kind not set"), "{err}");
    }

    #[test]
    fn directories_are_expanded() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("b.yaml"), "").unwrap();
        std::fs::write(dir.path().join("a.json"), "").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "").unwrap();
        std::fs::write(dir.path().join("sub/c.yml"), "").unwrap();
        let d = dir.path().to_string_lossy().to_string();
        assert_eq!(expand_paths(&d, false).unwrap().len(), 2);
        assert_eq!(expand_paths(&d, true).unwrap().len(), 3);
    }
}
