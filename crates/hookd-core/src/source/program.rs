//! jq programs (jaq): compiled once, run on a request's item with `$headers`, `$query`,
//! `$method` and `$source` bound.
//!
//! A program can loop forever, overflow the stack or take all memory (`def f: f; f`,
//! `[range(1e9)]`), and nothing inside one process can stop it then; hookd runs them in
//! worker processes with a time and memory limit (see the binary's `sandbox`). What this
//! module bounds itself is how many values a program may yield.

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;
use serde_json::Value;

/// The variables every program may read.
pub const VARIABLES: [&str; 4] = ["$headers", "$query", "$method", "$source"];

type Filter = jaq_core::compile::Filter<jaq_core::Native<data::JustLut<Val>>>;

/// A compiled program.
pub struct Program {
    filter: Filter,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Program")
    }
}

/// Why a program does not compile: where (a character offset into it) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramError {
    pub position: usize,
    pub message: String,
}

impl std::fmt::Display for ProgramError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "at character {}: {}", self.position + 1, self.message)
    }
}

/// The values the variables stand for in one run.
#[derive(Debug, Clone, Default)]
pub struct Bindings {
    pub headers: Value,
    pub query: Value,
    pub method: String,
    pub source: Value,
}

/// Where `part` (a slice of `code`) starts in it, in characters.
fn offset(code: &str, part: &str) -> usize {
    let start = (part.as_ptr() as usize)
        .saturating_sub(code.as_ptr() as usize)
        .min(code.len());
    code.get(..start).map_or(0, |before| before.chars().count())
}

/// How deep brackets may nest: the parser recurses on them, and a program of thousands of
/// `(` would overflow the stack of whoever compiles it.
const MAX_NESTING: usize = 64;

pub fn compile(code: &str) -> Result<Program, ProgramError> {
    let mut depth = 0usize;
    for (i, c) in code.chars().enumerate() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth > MAX_NESTING {
            return Err(ProgramError {
                position: i,
                message: format!("brackets nest deeper than {MAX_NESTING}"),
            });
        }
    }
    let defs = jaq_core::defs().chain(jaq_std::defs()).chain(jaq_json::defs());
    let funs = jaq_core::funs().chain(jaq_std::funs()).chain(jaq_json::funs());
    let arena = Arena::default();
    let modules = Loader::new(defs)
        .load(&arena, File { code, path: () })
        .map_err(|errors| {
            let first = errors.into_iter().next().map(|(_, e)| e);
            match first {
                Some(jaq_core::load::Error::Lex(errs)) => match errs.first() {
                    Some((expect, rest)) => ProgramError {
                        position: offset(code, rest),
                        message: format!("expected {}", expect.as_str()),
                    },
                    None => unknown(),
                },
                Some(jaq_core::load::Error::Parse(errs)) => match errs.first() {
                    Some((expect, found)) => ProgramError {
                        position: offset(code, found),
                        message: format!(
                            "expected {}, found {}",
                            expect.as_str(),
                            if found.is_empty() {
                                "the end".to_owned()
                            } else {
                                format!("`{found}`")
                            }
                        ),
                    },
                    None => unknown(),
                },
                Some(jaq_core::load::Error::Io(errs)) => ProgramError {
                    position: 0,
                    message: errs.first().map_or_else(|| "cannot load".into(), |(_, e)| e.clone()),
                },
                None => unknown(),
            }
        })?;
    let filter = Compiler::default()
        .with_funs(funs)
        .with_global_vars(VARIABLES)
        .compile(modules)
        .map_err(|errors| {
            let undefined = errors.into_iter().flat_map(|(_, errs)| errs).next();
            match undefined {
                Some((name, kind)) => ProgramError {
                    position: offset(code, name),
                    message: format!("undefined {} `{name}`", kind.as_str()),
                },
                None => unknown(),
            }
        })?;
    Ok(Program { filter })
}

fn unknown() -> ProgramError {
    ProgramError {
        position: 0,
        message: "the program does not compile".into(),
    }
}

impl Program {
    /// Runs on `input`: its outputs, at most `max` of them (one more is an error), or the
    /// first error it raises.
    pub fn run(&self, input: &Value, bindings: &Bindings, max: usize) -> Result<Vec<Value>, String> {
        let vars = [
            &bindings.headers,
            &bindings.query,
            &Value::String(bindings.method.clone()),
            &bindings.source,
        ]
        .map(to_val);
        let ctx = Ctx::<data::JustLut<Val>>::new(&self.filter.lut, Vars::new(vars));
        let mut outputs = Vec::new();
        for output in self.filter.id.run((ctx, to_val(input))).map(unwrap_valr) {
            let value = output.map_err(|e| e.to_string())?;
            if outputs.len() == max {
                return Err(format!("yields more than {max} values"));
            }
            outputs.push(from_val(&value)?);
        }
        Ok(outputs)
    }
}

fn to_val(value: &Value) -> Val {
    serde_json::from_value(value.clone()).unwrap_or(Val::Null)
}

fn from_val(value: &Val) -> Result<Value, String> {
    serde_json::from_str(&value.to_string()).map_err(|e| format!("yields a value that is not JSON ({e}): {value}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_program_runs_with_its_variables_and_a_bad_one_says_where() {
        let program = compile(".result[] | {d: .device_id, site: $headers.site, m: $method}").unwrap();
        let bindings = Bindings {
            headers: json!({"site": "plant-3"}),
            method: "POST".into(),
            ..Default::default()
        };
        let out = program.run(
            &json!({"result": [{"device_id": "a"}, {"device_id": "b"}]}),
            &bindings,
            10,
        );
        assert_eq!(
            out,
            Ok(vec![
                json!({"d": "a", "site": "plant-3", "m": "POST"}),
                json!({"d": "b", "site": "plant-3", "m": "POST"})
            ])
        );
        assert_eq!(
            compile(".[]")
                .unwrap()
                .run(&json!([1, 2, 3]), &bindings, 2)
                .unwrap_err(),
            "yields more than 2 values"
        );
        let err = compile(".result[").unwrap_err();
        assert_eq!(err.to_string(), "at character 9: expected closing bracket");
        let err = compile(".a | nope(1)").unwrap_err();
        assert_eq!((err.position, err.message.as_str()), (5, "undefined filter `nope`"));
        assert!(compile("$nope").unwrap_err().message.contains("undefined"));
        let deep = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
        assert_eq!(
            compile(&deep).unwrap_err().position,
            64,
            "refused before the parser recurses"
        );
        assert!(
            compile(".a")
                .unwrap()
                .run(&json!(1), &bindings, 1)
                .unwrap_err()
                .contains("cannot index")
        );
    }
}
