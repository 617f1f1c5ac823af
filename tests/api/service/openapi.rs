//! `/api/openapi.json` as REST tooling reads it: schemathesis generates requests from it
//! against the real server and checks every answer against the document.

use super::*;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn schemathesis_finds_every_answer_as_documented() {
    let python = deps("python");
    let schemathesis = Path::new(python.trim()).with_file_name("schemathesis");
    let dir = scratch_dir("openapi");
    write_config(
        &dir,
        &std::fs::read_to_string(format!("{REPO}/cameras.yaml")).unwrap(),
    );
    let server = Process::start(&dir, None);
    let base = format!("http://{}", server.addr);

    let document: serde_json::Value = actix_rt::System::new().block_on(async {
        let mut r = awc::Client::new()
            .get(format!("{base}/api/openapi.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().limit(1 << 20).await.unwrap()
    });
    assert_eq!(document["openapi"], "3.1.0");
    for path in [
        "/api/cameras",
        "/api/viewers",
        "/healthz",
        "/api/reload",
        "/cameras/{id}/snapshot.jpg",
        "/cameras/{id}/stream.mjpg",
    ] {
        assert!(
            document["paths"][path].is_object(),
            "{path} is not documented"
        );
    }
    assert!(document["components"]["schemas"]["CameraStatus"]["properties"]["fps"].is_object());

    // The stream never ends, so a generated request to it would never be answered in full;
    // its refusals (400, 404) are the same code as the snapshot's, and players read it in
    // players.rs.
    let out = Command::new(&schemathesis)
        .args(["run", &format!("{base}/api/openapi.json")])
        .args(["--url", &base])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_headers_conformance,response_schema_conformance",
        ])
        .args(["--exclude-path", "/cameras/{id}/stream.mjpg"])
        .args(["--max-examples", "40", "--workers", "1", "--seed", "1"])
        .args(["--request-timeout", "10", "--no-color"])
        .args(["--generation-database", "none"])
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("schemathesis runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{report}");
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{report}"
    );
    assert!(
        !report.contains("No operations"),
        "schemathesis ran nothing:\n{report}"
    );
}
