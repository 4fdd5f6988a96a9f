//! `get`: server-side Tables printed like kubectl's table printer, and the other output formats
//! (`-o wide|name|json|yaml|jsonpath=|custom-columns=`), with selectors, `-A`, `--show-labels`
//! and several types at once.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::cluster::{encode_query, Cluster, ResourceType};
use crate::error::{Error, Result};
use crate::output;

/// The Accept header that asks for a server-side Table.
pub const TABLE_ACCEPT: &str = "application/json;as=Table;v=v1;g=meta.k8s.io, application/json";

/// The flags of `get`.
#[derive(Debug, Clone, Default)]
pub struct GetOptions {
    pub output: Option<String>,
    pub selector: Option<String>,
    pub field_selector: Option<String>,
    pub all_namespaces: bool,
    pub show_labels: bool,
}

/// What the arguments of a verb name: types, and names of objects of those types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub type_word: String,
    pub names: Vec<String>,
}

/// Splits `deploy,svc`, `deploy web api`, `deploy/web svc/x` into targets, as kubectl does.
pub fn parse_targets(args: &[String]) -> Result<Vec<Target>> {
    let Some(first) = args.first() else {
        return Err(Error::Usage(
            "you must specify the type of resource to get. Use \"minictl api-resources\" for a complete list of supported resources.".into(),
        ));
    };
    if args.iter().any(|a| a.contains('/')) {
        let mut out: Vec<Target> = Vec::new();
        for arg in args {
            let (t, n) = arg.split_once('/').ok_or_else(|| {
                Error::Usage(("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'minictl get resource/<resource_name>' instead of 'minictl get resource resource/<resource_name>'").into())
            })?;
            match out.iter_mut().find(|x| x.type_word == t) {
                Some(x) => x.names.push(n.to_string()),
                None => out.push(Target {
                    type_word: t.into(),
                    names: vec![n.into()],
                }),
            }
        }
        return Ok(out);
    }
    let names: Vec<String> = args[1..].to_vec();
    Ok(first
        .split(',')
        .filter(|t| !t.is_empty())
        .map(|t| Target {
            type_word: t.to_string(),
            names: names.clone(),
        })
        .collect())
}

/// `k=v,k2=v2` (sorted) or `<none>`.
pub fn format_labels(labels: &Value) -> String {
    let Some(map) = labels.as_object().filter(|m| !m.is_empty()) else {
        return "<none>".into();
    };
    let sorted: BTreeMap<&String, String> = map
        .iter()
        .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string()))
        .collect();
    sorted
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn list_query(opts: &GetOptions) -> String {
    let mut q = Vec::new();
    if let Some(l) = &opts.selector {
        q.push(format!("labelSelector={}", encode_query(l)));
    }
    if let Some(f) = &opts.field_selector {
        q.push(format!("fieldSelector={}", encode_query(f)));
    }
    if q.is_empty() {
        String::new()
    } else {
        format!("?{}", q.join("&"))
    }
}

fn table_cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<none>".into(),
        other => other.to_string(),
    }
}

/// The objects (JSON) a target names.
async fn fetch_objects(
    cluster: &Cluster,
    rt: &ResourceType,
    names: &[String],
    opts: &GetOptions,
) -> Result<(Vec<Value>, Vec<Error>)> {
    let ns = (!opts.all_namespaces).then_some(cluster.namespace.as_str());
    let mut errors = Vec::new();
    if names.is_empty() {
        let list = cluster
            .get(&format!("{}{}", rt.collection_path(ns), list_query(opts)))
            .await?;
        let mut items = list["items"].as_array().cloned().unwrap_or_default();
        for item in &mut items {
            item["apiVersion"] = json!(rt.api_version());
            item["kind"] = json!(rt.kind);
        }
        return Ok((items, errors));
    }
    let mut out = Vec::new();
    for name in names {
        match cluster
            .get(&rt.object_path(Some(&cluster.namespace), name))
            .await
        {
            Ok(v) => out.push(v),
            Err(e) => errors.push(e),
        }
    }
    Ok((out, errors))
}

/// Runs `get`; returns the errors to report (already printed results go to stdout).
pub async fn run(cluster: &Cluster, args: &[String], opts: &GetOptions) -> Result<Vec<Error>> {
    let targets = parse_targets(args)?;
    let mut resolved = Vec::new();
    for t in &targets {
        for rt in cluster.resolve_many(&t.type_word).await? {
            resolved.push((rt, t.names.clone()));
        }
    }
    let format = opts.output.clone().unwrap_or_default();
    let mut errors = Vec::new();
    if format.is_empty() || format == "wide" {
        let with_kind = resolved.len() > 1 || targets.len() > 1;
        let mut printed_any = false;
        for (rt, names) in &resolved {
            let (text, errs) =
                table_for(cluster, rt, names, opts, format == "wide", with_kind).await?;
            errors.extend(errs);
            if let Some(text) = text {
                if printed_any {
                    println!();
                }
                print!("{text}");
                printed_any = true;
            }
        }
        if !printed_any && errors.is_empty() {
            if opts.all_namespaces {
                eprintln!("No resources found");
            } else {
                eprintln!("No resources found in {} namespace.", cluster.namespace);
            }
        }
        return Ok(errors);
    }
    let mut objects = Vec::new();
    let single = resolved.len() == 1 && resolved[0].1.len() == 1;
    for (rt, names) in &resolved {
        let (objs, errs) = fetch_objects(cluster, rt, names, opts).await?;
        errors.extend(errs);
        objects.extend(objs.into_iter().map(|o| (rt.clone(), o)));
    }
    let as_value = || {
        if single && objects.len() == 1 {
            objects[0].1.clone()
        } else {
            json!({"apiVersion": "v1", "items": objects.iter().map(|(_, o)| o.clone()).collect::<Vec<_>>(),
                   "kind": "List", "metadata": {"resourceVersion": ""}})
        }
    };
    if format == "json" {
        print!("{}", output::to_json(&as_value()));
    } else if format == "yaml" {
        print!("{}", output::to_yaml(&as_value()));
    } else if format == "name" {
        for (rt, o) in &objects {
            println!(
                "{}/{}",
                rt.qualified_kind(),
                o["metadata"]["name"].as_str().unwrap_or_default()
            );
        }
    } else if let Some(template) = format
        .strip_prefix("jsonpath=")
        .or_else(|| format.strip_prefix("jsonpath-as-json="))
    {
        let template = template.trim_matches('\'');
        print!("{}", output::jsonpath(template, &as_value())?);
    } else if let Some(spec) = format.strip_prefix("custom-columns=") {
        let columns = output::parse_custom_columns(spec)?;
        let mut rows = vec![columns.iter().map(|(h, _)| h.clone()).collect::<Vec<_>>()];
        for (_, o) in &objects {
            rows.push(
                columns
                    .iter()
                    .map(|(_, p)| output::custom_column(p, o))
                    .collect::<Result<Vec<_>>>()?,
            );
        }
        print!("{}", output::tabulate(&rows));
    } else {
        return Err(Error::Usage(format!(
            "unable to match a printer suitable for the output format \"{format}\", allowed formats are: custom-columns,custom-columns-file,go-template,go-template-file,json,jsonpath,jsonpath-as-json,jsonpath-file,name,template,templatefile,wide,yaml"
        )));
    }
    Ok(errors)
}

/// The table text of one target, or None when it matched nothing.
async fn table_for(
    cluster: &Cluster,
    rt: &ResourceType,
    names: &[String],
    opts: &GetOptions,
    wide: bool,
    with_kind: bool,
) -> Result<(Option<String>, Vec<Error>)> {
    let ns = (!opts.all_namespaces).then_some(cluster.namespace.as_str());
    let mut tables = Vec::new();
    let mut errors = Vec::new();
    if names.is_empty() {
        let path = format!("{}{}", rt.collection_path(ns), list_query(opts));
        tables.push(
            cluster
                .request(http::Method::GET, &path, None, Some(TABLE_ACCEPT), None)
                .await?,
        );
    } else {
        for name in names {
            let path = rt.object_path(Some(&cluster.namespace), name);
            match cluster
                .request(http::Method::GET, &path, None, Some(TABLE_ACCEPT), None)
                .await
            {
                Ok(t) => tables.push(t),
                Err(e) => errors.push(e),
            }
        }
    }
    let rows = table_rows(rt, &tables, opts, wide, with_kind);
    if rows.len() <= 1 {
        return Ok((None, errors));
    }
    Ok((Some(output::tabulate(&rows)), errors))
}

/// The header and rows of server Tables as kubectl prints them (NAMESPACE with -A, kind
/// prefixes, LABELS with --show-labels); empty without tables.
fn table_rows(
    rt: &ResourceType,
    tables: &[Value],
    opts: &GetOptions,
    wide: bool,
    with_kind: bool,
) -> Vec<Vec<String>> {
    let Some(first) = tables.first() else {
        return Vec::new();
    };
    let columns: Vec<(usize, String)> = first["columnDefinitions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
        .filter(|(_, c)| wide || c["priority"].as_i64().unwrap_or(0) == 0)
        .map(|(i, c)| (i, c["name"].as_str().unwrap_or_default().to_uppercase()))
        .collect();
    let namespace_column = opts.all_namespaces && rt.namespaced;
    let mut header: Vec<String> = Vec::new();
    if namespace_column {
        header.push("NAMESPACE".into());
    }
    header.extend(columns.iter().map(|(_, n)| n.clone()));
    if opts.show_labels {
        header.push("LABELS".into());
    }
    let mut rows = vec![header];
    for table in tables {
        for row in table["rows"].as_array().cloned().unwrap_or_default() {
            let cells = row["cells"].as_array().cloned().unwrap_or_default();
            let meta = &row["object"]["metadata"];
            let mut line = Vec::new();
            if namespace_column {
                line.push(meta["namespace"].as_str().unwrap_or_default().to_string());
            }
            for (pos, (i, _)) in columns.iter().enumerate() {
                let mut cell = cells.get(*i).map(table_cell).unwrap_or_default();
                if pos == 0 && with_kind {
                    cell = format!("{}/{cell}", rt.qualified_kind());
                }
                line.push(cell);
            }
            if opts.show_labels {
                line.push(format_labels(&meta["labels"]));
            }
            rows.push(line);
        }
    }
    rows
}

/// `get -w`: the table, then one line per change as the server's watch (rendered as Tables)
/// reports it, until interrupted.
pub async fn watch(cluster: &Cluster, args: &[String], opts: &GetOptions) -> Result<()> {
    use futures::{AsyncBufReadExt, StreamExt};
    use std::io::Write;
    let targets = parse_targets(args)?;
    let [target] = targets.as_slice() else {
        return Err(Error::Usage(
            "you may only specify a single resource type".into(),
        ));
    };
    let rt = cluster.resolve(&target.type_word).await?;
    let wide = opts.output.as_deref() == Some("wide");
    let ns = (!opts.all_namespaces).then_some(cluster.namespace.as_str());
    let mut query = list_query(opts);
    if let [name] = target.names.as_slice() {
        let field = format!("metadata.name={name}");
        query = if query.is_empty() {
            format!("?fieldSelector={}", encode_query(&field))
        } else {
            format!("{query}&fieldSelector={}", encode_query(&field))
        };
    }
    let path = format!("{}{query}", rt.collection_path(ns));
    let table = cluster
        .request(http::Method::GET, &path, None, Some(TABLE_ACCEPT), None)
        .await?;
    let rows = table_rows(&rt, std::slice::from_ref(&table), opts, wide, false);
    if rows.len() > 1 {
        print!("{}", output::tabulate(&rows));
    } else if opts.all_namespaces {
        eprintln!("No resources found");
    } else {
        eprintln!("No resources found in {} namespace.", cluster.namespace);
    }
    let _ = std::io::stdout().flush();
    let version = table["metadata"]["resourceVersion"].as_str().unwrap_or("0");
    let separator = if query.is_empty() { '?' } else { '&' };
    let watch_path = format!("{path}{separator}watch=1&resourceVersion={version}");
    let request = http::Request::builder()
        .uri(watch_path)
        .header(http::header::ACCEPT, TABLE_ACCEPT)
        .body(Vec::new())
        .map_err(|e| Error::Transport(e.to_string()))?;
    let mut lines = cluster.client.request_stream(request).await?.lines();
    while let Some(line) = lines.next().await {
        let line = line.map_err(|e| Error::Transport(e.to_string()))?;
        let Ok(event) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if !matches!(
            event["type"].as_str(),
            Some("ADDED" | "MODIFIED" | "DELETED")
        ) {
            continue;
        }
        let rows = table_rows(
            &rt,
            std::slice::from_ref(&event["object"]),
            opts,
            wide,
            false,
        );
        // Each change is printed alone (no header), as kubectl does after the first table.
        if rows.len() > 1 {
            print!("{}", output::tabulate(&rows[1..]));
            let _ = std::io::stdout().flush();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn targets_in_every_form() {
        assert_eq!(
            parse_targets(&strings(&["deploy,svc"])).unwrap(),
            vec![
                Target {
                    type_word: "deploy".into(),
                    names: vec![]
                },
                Target {
                    type_word: "svc".into(),
                    names: vec![]
                }
            ]
        );
        assert_eq!(
            parse_targets(&strings(&["pods", "a", "b"])).unwrap(),
            vec![Target {
                type_word: "pods".into(),
                names: strings(&["a", "b"])
            }]
        );
        assert_eq!(
            parse_targets(&strings(&["deploy/web", "svc/web", "deploy/api"])).unwrap(),
            vec![
                Target {
                    type_word: "deploy".into(),
                    names: strings(&["web", "api"])
                },
                Target {
                    type_word: "svc".into(),
                    names: strings(&["web"])
                }
            ]
        );
        assert!(parse_targets(&[]).is_err());
    }

    #[test]
    fn labels_are_sorted() {
        assert_eq!(format_labels(&json!({"b": "2", "a": "1"})), "a=1,b=2");
        assert_eq!(format_labels(&Value::Null), "<none>");
    }
}
