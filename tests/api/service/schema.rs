//! The JSON Schema of cameras.yaml, checked by a real validator (Python's `jsonschema`):
//! every example configuration in the repo passes, and the bad files it can express fail.

use super::*;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// Validates YAML documents against `schema` with `jsonschema`'s Draft 2020-12 validator,
/// after checking the schema itself. Returns, per document, its errors (empty when valid).
fn validate(schema: &serde_json::Value, documents: &[String]) -> Vec<Vec<String>> {
    let python = deps("python");
    let script = "import sys, json, yaml, jsonschema\n\
        job = json.load(sys.stdin)\n\
        jsonschema.Draft202012Validator.check_schema(job['schema'])\n\
        v = jsonschema.Draft202012Validator(job['schema'])\n\
        print(json.dumps([[f\"{'/'.join(map(str, e.absolute_path))}: {e.message}\" for e in v.iter_errors(yaml.safe_load(d))] for d in job['documents']]))\n";
    let job = serde_json::json!({ "schema": schema, "documents": documents });
    let out = run_with_input(
        Command::new(python.trim()).args(["-c", script]),
        &job.to_string(),
    );
    assert!(
        out.status.success(),
        "the validator failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The YAML code blocks of a Markdown file, de-indented (some sit in list items).
fn yaml_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        match &mut current {
            None if trimmed == "```yaml" => {
                current = Some((line.len() - trimmed.len(), String::new()));
            }
            None => {}
            Some(_) if trimmed == "```" => blocks.push(current.take().unwrap().1),
            Some((indent, text)) => {
                text.push_str(line.get(*indent..).unwrap_or(""));
                text.push('\n');
            }
        }
    }
    blocks
}

fn schema_printed() -> serde_json::Value {
    let (ok, out, err) = camfleet(&["schema"], "");
    assert!(ok, "camfleet schema failed: {err}");
    serde_json::from_str(&out).unwrap()
}

#[actix_rt::test]
async fn the_schema_is_printed_served_committed_and_accepts_every_example() {
    let schema = schema_printed();
    // The same document from the running server, and in the repo for editors.
    let dir = scratch_dir("schema");
    write_config(&dir, &format!("cameras:\n{}", synthetic("lobby", 5)));
    let server = Process::start(&dir, None);
    let mut r = awc::Client::new()
        .get(format!("http://{}/schema/cameras.json", server.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let served: serde_json::Value = serde_json::from_slice(&r.body().await.unwrap()).unwrap();
    assert_eq!(
        served, schema,
        "/schema/cameras.json differs from `camfleet schema`"
    );
    let committed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{REPO}/docs/cameras.schema.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        committed, schema,
        "docs/cameras.schema.json is out of date: run `cargo run -- schema > docs/cameras.schema.json`"
    );
    let fleet = std::fs::read_to_string(format!("{REPO}/cameras.yaml")).unwrap();
    assert!(
        fleet.starts_with("# yaml-language-server: $schema=docs/cameras.schema.json\n"),
        "cameras.yaml should point editors at the schema"
    );

    let mut examples: Vec<(String, String)> = vec![("cameras.yaml".into(), fleet)];
    for doc in ["README.md", "deploy/README.md"] {
        let text = std::fs::read_to_string(format!("{REPO}/{doc}")).unwrap();
        for (i, block) in yaml_blocks(&text).into_iter().enumerate() {
            examples.push((format!("{doc}, yaml block {}", i + 1), block));
        }
    }
    for (name, file) in super::kubernetes::manifests().0.data.unwrap() {
        examples.push((format!("deploy/kubernetes/camfleet.yaml, {name}"), file));
    }
    assert!(
        examples.len() >= 7,
        "too few examples found: {}",
        examples.len()
    );
    let texts: Vec<String> = examples.iter().map(|(_, t)| t.clone()).collect();
    for ((name, text), errors) in examples.iter().zip(validate(&schema, &texts)) {
        assert!(
            errors.is_empty(),
            "{name} fails the schema: {errors:?}\n{text}"
        );
    }
}

#[test]
fn the_schema_refuses_what_it_can_express() {
    let schema = schema_printed();
    let cases = [
        (
            "an unknown key",
            "cameras:\n  - id: a\n    source: {kind: synthetic}\n    colour: red\n",
            "colour",
        ),
        (
            "an unknown server key",
            "server:\n  listn: 127.0.0.1:8080\n",
            "listn",
        ),
        (
            "a wrong type",
            "cameras:\n  - id: a\n    source: {kind: synthetic, width: wide}\n",
            "wide",
        ),
        (
            "fps 0",
            "cameras:\n  - id: a\n    source: {kind: synthetic, fps: 0}\n",
            "minimum",
        ),
        (
            "an unknown kind",
            "cameras:\n  - id: a\n    source: {kind: usb}\n",
            "usb",
        ),
        (
            "a control value of a list",
            "cameras:\n  - id: a\n    source: {kind: synthetic}\n    controls: {brightness: [1]}\n",
            "brightness",
        ),
        (
            "jpeg_quality 101",
            "cameras:\n  - id: a\n    jpeg_quality: 101\n    source: {kind: synthetic}\n",
            "maximum",
        ),
        ("a missing source", "cameras:\n  - id: a\n", "source"),
    ];
    let texts: Vec<String> = cases.iter().map(|(_, t, _)| (*t).to_string()).collect();
    for ((what, text, needle), errors) in cases.iter().zip(validate(&schema, &texts)) {
        assert!(!errors.is_empty(), "the schema accepts {what}:\n{text}");
        let all = errors.join("\n");
        assert!(
            all.contains(needle),
            "{what}: the errors do not name `{needle}`: {all}"
        );
        // camfleet itself refuses each of them too.
        let (ok, _, _) = {
            let dir = scratch_dir("schema-bad");
            std::fs::write(dir.join("bad.yaml"), text).unwrap();
            camfleet(&["check", dir.join("bad.yaml").to_str().unwrap()], "")
        };
        assert!(!ok, "camfleet check accepts {what}");
    }
}
