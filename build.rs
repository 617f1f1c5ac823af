//! Compiles `proto/` with `protox` (no system `protoc` needed) into:
//! - Rust types, through `prost-build`;
//! - `schema.json`, every message's fields and every enum's values, which the dashboard's
//!   protobuf codec reads, so field numbers are never copied by hand into JavaScript.

use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::FileDescriptorSet;
use serde_json::{json, Map, Value};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["proto/camfleet/v1/camfleet.proto"];
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(files, ["proto"])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("schema.json"), schema(&descriptors).to_string())?;
    // `/api/cameras` serializes the wire's CameraStatus itself, so the JSON and the
    // WebSocket cannot drift apart.
    prost_build::Config::new()
        .bytes(["."])
        // The OpenAPI document describes it from the same type (`utoipa::ToSchema`).
        .type_attribute(
            ".camfleet.v1.CameraStatus",
            "#[derive(serde::Serialize, utoipa::ToSchema)]",
        )
        .type_attribute(
            ".camfleet.v1.ControlProblem",
            "#[derive(serde::Serialize, utoipa::ToSchema)]",
        )
        .field_attribute(
            ".camfleet.v1.CameraStatus.state",
            "#[serde(serialize_with = \"crate::http::api::serialize_state\")] \
             #[schema(value_type = crate::http::api::StateName)]",
        )
        .field_attribute(
            ".camfleet.v1.CameraStatus.controls",
            "#[serde(serialize_with = \"crate::http::api::serialize_controls\")] \
             #[schema(value_type = std::collections::BTreeMap<String, i64>)]",
        )
        .compile_fds(descriptors)?;
    Ok(())
}

fn schema(set: &FileDescriptorSet) -> Value {
    let mut messages = Map::new();
    let mut enums = Map::new();
    for file in &set.file {
        let package = file.package();
        for e in &file.enum_type {
            let values: Map<String, Value> = e
                .value
                .iter()
                .map(|v| (v.name().to_string(), json!(v.number())))
                .collect();
            enums.insert(format!("{package}.{}", e.name()), Value::Object(values));
        }
        for m in &file.message_type {
            let fields: Vec<Value> = m
                .field
                .iter()
                .map(|f| {
                    // A proto3 `optional` field sits in a synthetic oneof; it is not a choice.
                    let oneof = f
                        .oneof_index
                        .filter(|_| !f.proto3_optional())
                        .map(|i| m.oneof_decl[i as usize].name().to_string());
                    json!({
                        "name": f.name(),
                        "number": f.number(),
                        "type": type_name(f.r#type()),
                        "typeName": f.type_name().trim_start_matches('.'),
                        "repeated": f.label() == Label::Repeated,
                        "oneof": oneof,
                        "optional": f.proto3_optional(),
                    })
                })
                .collect();
            messages.insert(
                format!("{package}.{}", m.name()),
                json!({ "fields": fields }),
            );
        }
    }
    json!({ "messages": messages, "enums": enums })
}

fn type_name(t: Type) -> &'static str {
    match t {
        Type::Double => "double",
        Type::Float => "float",
        Type::Int64 => "int64",
        Type::Uint64 => "uint64",
        Type::Int32 => "int32",
        Type::Uint32 => "uint32",
        Type::Bool => "bool",
        Type::String => "string",
        Type::Bytes => "bytes",
        Type::Message => "message",
        Type::Enum => "enum",
        other => {
            panic!("the dashboard's codec does not handle {other:?} fields; extend web/proto.js")
        }
    }
}
