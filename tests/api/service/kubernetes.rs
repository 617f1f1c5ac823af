//! `deploy/kubernetes/camfleet.yaml` read with the Kubernetes API's own types: a
//! `DaemonSet` on the camera hosts and a `ConfigMap` whose fleet files camfleet accepts.

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::ConfigMap;
use serde::Deserialize;

use super::*;

/// The manifest's `ConfigMap` and `DaemonSet`, read with the Kubernetes API's types.
pub(super) fn manifests() -> (ConfigMap, DaemonSet) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes/camfleet.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut config_map = None;
    let mut daemon_set = None;
    for document in serde_yaml::Deserializer::from_str(&text) {
        let value = serde_yaml::Value::deserialize(document).unwrap();
        match value["kind"].as_str() {
            Some("ConfigMap") => {
                config_map = Some(serde_yaml::from_value::<ConfigMap>(value).unwrap());
            }
            Some("DaemonSet") => {
                daemon_set = Some(serde_yaml::from_value::<DaemonSet>(value).unwrap());
            }
            other => panic!("unexpected document {other:?}"),
        }
    }
    (config_map.unwrap(), daemon_set.unwrap())
}

#[test]
fn the_kubernetes_manifests_run_camfleet_on_each_camera_host_with_its_fleet_file() {
    let (config_map, daemon_set) = manifests();

    // Every node's fleet file is one camfleet accepts, joined to the broker.
    let files = config_map.data.unwrap();
    assert!(!files.is_empty());
    for (name, fleet) in &files {
        let config = camfleet::config::Config::parse(fleet, Path::new(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(config.mqtt.is_some(), "{name} joins no broker");
        assert!(Path::new(name).extension().is_some_and(|e| e == "yaml"));
    }

    let spec = daemon_set.spec;
    let pod = spec.template.spec.unwrap();
    assert_eq!(
        pod.node_selector
            .unwrap()
            .get("camfleet/camera-host")
            .map(String::as_str),
        Some("true")
    );
    assert_eq!(
        pod.host_network,
        Some(true),
        "browsers reach each node directly"
    );
    let container = &pod.containers[0];
    let args = container.args.clone().unwrap().join(" ");
    assert!(
        args.contains("--config /etc/camfleet/$(NODE_NAME).yaml"),
        "{args}"
    );
    let node_name = container
        .env
        .as_ref()
        .unwrap()
        .iter()
        .find(|e| e.name == "NODE_NAME");
    assert_eq!(
        node_name
            .and_then(|e| e.value_from.as_ref())
            .and_then(|v| v.field_ref.as_ref())
            .map(|f| f.field_path.as_str()),
        Some("spec.nodeName")
    );
    let mounts = container.volume_mounts.clone().unwrap();
    let mounted = |at: &str| {
        mounts
            .iter()
            .find(|m| m.mount_path == at)
            .map(|m| m.name.clone())
    };
    let volumes = pod.volumes.unwrap();
    let volume = |name: Option<String>| {
        volumes
            .iter()
            .find(|v| Some(&v.name) == name.as_ref())
            .unwrap()
    };
    assert_eq!(
        volume(mounted("/etc/camfleet"))
            .config_map
            .as_ref()
            .unwrap()
            .name,
        config_map.metadata.name.unwrap()
    );
    assert_eq!(
        volume(mounted("/dev")).host_path.as_ref().unwrap().path,
        "/dev"
    );
    assert!(
        volume(mounted("/var/lib/camfleet")).host_path.is_some(),
        "controls survive restarts"
    );
    let probe = container
        .liveness_probe
        .as_ref()
        .unwrap()
        .http_get
        .as_ref()
        .unwrap();
    assert_eq!(probe.path.as_deref(), Some("/healthz"));
}
