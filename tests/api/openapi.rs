//! `openapi.yaml` and the served routes describe the same API, operation for operation.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::spawn_app;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn spec_operations() -> BTreeSet<(String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml");
    let spec: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
    let mut operations = BTreeSet::new();
    for (path, item) in spec["paths"].as_mapping().unwrap() {
        for method in METHODS {
            if item.get(method).is_some() {
                operations.insert((method.to_uppercase(), path.as_str().unwrap().to_string()));
            }
        }
    }
    operations
}

#[test]
fn every_served_route_is_documented_and_every_documented_route_is_served() {
    let served: BTreeSet<(String, String)> = sessiond::http::routes::table()
        .into_iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    let documented = spec_operations();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "served but not in openapi.yaml: {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "in openapi.yaml but not served: {unserved:?}"
    );
}

#[tokio::test]
async fn every_documented_operation_reaches_a_handler() {
    let app = spawn_app().await;
    for (method, path) in spec_operations() {
        let concrete = path.replace("{id}", &uuid::Uuid::now_v7().to_string());
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let response = app
            .client
            .request(method.clone(), app.url(&concrete))
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        if status == StatusCode::NOT_FOUND {
            let body: Value = response.json().await.unwrap();
            assert_ne!(
                body["error_description"], "no such route",
                "{method} {path}"
            );
        }
    }
}

#[tokio::test]
async fn the_spec_is_served_as_committed() {
    let app = spawn_app().await;
    let response = app.get("/openapi.yaml").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let served = response.text().await.unwrap();
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml")).unwrap();
    assert_eq!(served, committed);
}

#[test]
fn every_audit_event_type_is_in_the_spec() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml");
    let spec: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let documented: BTreeSet<String> =
        spec["components"]["schemas"]["AuditEvent"]["properties"]["type"]["enum"]
            .as_sequence()
            .expect("AuditEvent.type has an enum")
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
    let recorded: BTreeSet<String> = sessiond::observability::audit::Event::ALL
        .iter()
        .map(|e| e.as_str().to_string())
        .collect();
    assert_eq!(recorded, documented);
}
