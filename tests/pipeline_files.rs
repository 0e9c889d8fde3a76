//! Runs every case in tests/pipelines (see its README): `logbridge pipeline run
//! NAME.conf < NAME.input`, compared with NAME.expected field by field.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

/// Every field of `expected` must be equal in `actual` (objects recursively);
/// `"<absent>"` means the field must be missing. Returns the first difference.
fn differs(expected: &Value, actual: Option<&Value>, path: &str) -> Option<String> {
    match (expected, actual) {
        (Value::String(s), None) if s == "<absent>" => None,
        (Value::String(s), Some(a)) if s == "<absent>" => {
            Some(format!("{path} should be absent, is {a}"))
        }
        (Value::Object(e), Some(Value::Object(a))) => e
            .iter()
            .find_map(|(k, v)| differs(v, a.get(k), &format!("{path}[{k}]"))),
        (e, Some(a)) if e == a => None,
        (e, a) => Some(format!(
            "{path}: expected {e}, got {}",
            a.map_or("nothing".to_string(), |a| a.to_string())
        )),
    }
}

fn run_case(dir: &Path, name: &str) -> Result<(), String> {
    let input = std::fs::read(dir.join(format!("{name}.input"))).map_err(|e| e.to_string())?;
    let expected: Vec<Value> = std::fs::read_to_string(dir.join(format!("{name}.expected")))
        .map_err(|e| e.to_string())?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| format!("{name}.expected: {e}")))
        .collect::<Result<_, _>>()?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_logbridge"))
        .args(["pipeline", "run"])
        .arg(dir.join(format!("{name}.conf")))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&input)
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "{name}: exit {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let actual: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).map_err(|e| format!("{name}: output {l:?}: {e}")))
        .collect::<Result<_, _>>()?;
    if actual.len() != expected.len() {
        return Err(format!(
            "{name}: {} events out, {} expected",
            actual.len(),
            expected.len()
        ));
    }
    for (i, (e, a)) in expected.iter().zip(&actual).enumerate() {
        if let Some(d) = differs(e, Some(a), "") {
            return Err(format!("{name}: event {}: {d}\n  event: {a}", i + 1));
        }
    }
    Ok(())
}

#[test]
fn every_pipeline_case_matches_its_expected_events() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pipelines");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".conf")
                .map(str::to_string)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 6, "cases found: {names:?}");
    let failures: Vec<String> = names
        .iter()
        .filter_map(|n| run_case(&dir, n).err())
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_comparison_can_fail() {
    let e: Value = serde_json::json!({"a": {"b": 1}, "gone": "<absent>"});
    assert!(differs(&e, Some(&serde_json::json!({"a": {"b": 1}})), "").is_none());
    assert!(differs(&e, Some(&serde_json::json!({"a": {"b": 2}})), "").is_some());
    assert!(differs(&e, Some(&serde_json::json!({"a": {"b": 1}, "gone": 0})), "").is_some());
    assert!(differs(&e, Some(&serde_json::json!({})), "").is_some());
}
