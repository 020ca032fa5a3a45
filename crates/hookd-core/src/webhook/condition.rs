//! A webhook's `condition`: a jq program run on each record (as delivered: stamped with its
//! id), which matches only when it yields exactly one value, `true`. Checked here when the
//! webhook is made or changed; run where a hostile program cannot hurt (the binary's sandbox).

use serde_json::Value;

use crate::source::{Bindings, ProgramError, compile};
use crate::validation::{Fields, ValidationError};

/// The longest condition taken, in characters.
const MAX_CONDITION_LEN: usize = 4096;

/// The `condition` field of a webhook body (or a preview's draft), compiled to check it.
pub fn parse(f: &Fields<'_>) -> Result<Option<String>, ValidationError> {
    let Some(code) = f.opt_str("condition")? else {
        return Ok(None);
    };
    f.check_len("condition", code, MAX_CONDITION_LEN)?;
    check(code).map_err(|e| f.invalid("condition", format!("the condition does not compile {e}")))?;
    Ok(Some(code.to_owned()))
}

/// Whether `code` compiles as a condition.
pub fn check(code: &str) -> Result<(), ProgramError> {
    compile(code).map(drop)
}

/// Whether `record` matches the compiled condition: `Err` when the program raises an error
/// on it or yields more than one value (which the caller counts as no match).
pub fn matches(program: &crate::source::Program, record: &Value) -> Result<bool, String> {
    let outputs = program.run(record, &Bindings::default(), 1)?;
    Ok(outputs.first() == Some(&Value::Bool(true)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_record_matches_only_when_the_condition_yields_true() {
        let hot = compile(".payload.temp > 80").unwrap();
        assert_eq!(matches(&hot, &json!({"payload": {"temp": 81}})), Ok(true));
        assert_eq!(matches(&hot, &json!({"payload": {"temp": 20}})), Ok(false));
        let truthy = compile(".payload.temp").unwrap();
        assert_eq!(
            matches(&truthy, &json!({"payload": {"temp": 1}})),
            Ok(false),
            "truthy is not true"
        );
        let typed = compile(".payload.temp + 1 > 81").unwrap();
        assert!(matches(&typed, &json!({"payload": {"temp": "hot"}})).is_err());
        let several = compile(".payload[] == 1").unwrap();
        assert!(
            matches(&several, &json!({"payload": [1, 1]})).is_err(),
            "one value, not several"
        );
        assert!(
            check(".payload.temp >")
                .unwrap_err()
                .to_string()
                .starts_with("at character")
        );
    }
}
