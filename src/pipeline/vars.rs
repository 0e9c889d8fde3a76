//! `${VAR}` and `${VAR:default}` in plugin setting values, replaced when a pipeline is
//! loaded, as Logstash does with environment variables: the process environment
//! first, then the appliance's `[pipeline_vars]` table, then the default. A reference
//! with neither a value nor a default is a load-time error naming it.

use std::collections::BTreeMap;

use super::ast::{Config, Plugin, Statement, Value};
use super::settings::PluginError;

/// Replaces every `${…}` in the plugin settings of `config`.
pub fn substitute(config: &mut Config, vars: &BTreeMap<String, String>) -> Result<(), PluginError> {
    for section in &mut config.sections {
        statements(&mut section.body, vars)?;
    }
    Ok(())
}

fn statements(body: &mut [Statement], vars: &BTreeMap<String, String>) -> Result<(), PluginError> {
    for st in body {
        match st {
            Statement::Plugin(p) => plugin(p, vars)?,
            Statement::If(chain) => {
                for (_, b) in &mut chain.branches {
                    statements(b, vars)?;
                }
                if let Some(b) = &mut chain.otherwise {
                    statements(b, vars)?;
                }
            }
        }
    }
    Ok(())
}

fn plugin(p: &mut Plugin, vars: &BTreeMap<String, String>) -> Result<(), PluginError> {
    for s in &mut p.settings {
        value(&mut s.value, vars).map_err(|message| PluginError {
            pos: s.pos,
            message: format!(
                "{} \"{}\": setting \"{}\": {message}",
                "plugin", p.name, s.name
            ),
        })?;
    }
    Ok(())
}

fn value(v: &mut Value, vars: &BTreeMap<String, String>) -> Result<(), String> {
    match v {
        Value::String(s) | Value::Bareword(s) => {
            if s.contains("${") {
                *s = expand(s, vars)?;
            }
        }
        Value::Array(items) => {
            for i in items {
                value(i, vars)?;
            }
        }
        Value::Hash(entries) => {
            for (_, v) in entries {
                value(v, vars)?;
            }
        }
        Value::Plugin(p) => {
            for s in &mut p.settings {
                value(&mut s.value, vars)?;
            }
        }
        Value::Number(_) => {}
    }
    Ok(())
}

/// Expands `${NAME}` / `${NAME:default}` in one string.
pub fn expand(s: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let (name, default) = match after[..end].split_once(':') {
            Some((n, d)) => (n, Some(d)),
            None => (&after[..end], None),
        };
        let found = std::env::var(name)
            .ok()
            .or_else(|| vars.get(name).cloned())
            .or_else(|| default.map(str::to_string))
            .ok_or_else(|| {
                format!("`${{{name}}}` is not set in the environment or [pipeline_vars], and has no default (`${{{name}:default}}`)")
            })?;
        out.push_str(&found);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_defaults_and_missing_ones() {
        let vars = BTreeMap::from([("ES".to_string(), "http://es:9200".to_string())]);
        assert_eq!(expand("${ES}/x", &vars).unwrap(), "http://es:9200/x");
        assert_eq!(
            expand("${LOGBRIDGE_SURELY_UNSET_VAR:fallback}", &vars).unwrap(),
            "fallback"
        );
        assert_eq!(expand("${LOGBRIDGE_SURELY_UNSET_VAR:}", &vars).unwrap(), "");
        assert!(expand("${LOGBRIDGE_SURELY_UNSET_VAR}", &vars).is_err());
        assert_eq!(expand("%{field} stays", &vars).unwrap(), "%{field} stays");
    }
}
