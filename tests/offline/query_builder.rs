//! LibreNMS's own builder → SQL cases (`alerting/querybuilder.json`, the
//! data of its `QueryBuilderTest`): the text its web UI shows, the SQL it
//! runs for an alert rule, and the query and bindings it runs for a device
//! group must all come out of ironpoll byte for byte.

use ironpoll::alerting::{Macros, QueryBuilder};
use serde_json::Value;

use crate::support::librenms_fixtures;

#[test]
fn every_librenms_builder_case_gives_librenms_sql() {
    let path = librenms_fixtures().join("alerting/querybuilder.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{} unreadable: {e}", path.display()));
    let cases: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert!(cases.len() >= 27, "only {} cases", cases.len());
    let macros = Macros::builtin();
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let qb = QueryBuilder::new(case[1].clone(), &macros);
        let display = qb.to_sql(false).unwrap().unwrap_or_default();
        let sql = qb.to_sql(true).unwrap().unwrap_or_default();
        let query = qb.to_query().unwrap().unwrap();
        let bindings = Value::Array(query.bindings.clone());
        for (what, have, want) in [
            ("display", display.as_str(), case[2].as_str().unwrap()),
            ("sql", sql.as_str(), case[3].as_str().unwrap()),
            ("query", query.sql.as_str(), case[4][0].as_str().unwrap()),
        ] {
            if have != want {
                failures.push(format!("case {i} {what}:\n  have {have}\n  want {want}"));
            }
        }
        if bindings != case[4][1] {
            failures.push(format!(
                "case {i} bindings: have {bindings}, want {}",
                case[4][1]
            ));
        }
    }
    println!(
        "querybuilder.json: {} of {} cases identical",
        cases.len() - failures.len().min(cases.len()),
        cases.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn an_empty_or_broken_builder_gives_no_sql() {
    let macros = Macros::builtin();
    for text in ["", "{}", "not json", "[]", r#"{"rules": []}"#] {
        let qb = QueryBuilder::from_json(text, &macros);
        assert_eq!(qb.to_sql(true).unwrap(), None, "{text}");
        assert!(qb.to_query().unwrap().is_none(), "{text}");
    }
    let qb = QueryBuilder::from_json(
        r#"{"condition":"AND","rules":[{"field":"devices.hostname","operator":"bogus","value":"x"}]}"#,
        &macros,
    );
    assert!(qb.to_sql(true).is_err());
}
