//! The sources of the configuration, merged into one TOML table, later wins: the embedded
//! defaults, the file named by `AMI_CONFIG`, `AMI_<KEY>` variables, then the aliases of
//! hosting platforms (`DATABASE_URL`, `PORT`). Arrays are replaced whole.

use std::collections::HashMap;

use toml::{Table, Value};

use super::collect::{Path, Soundness};
use super::types::shown;

/// The merged table, where each key that was not left at its default came from, and the
/// problems met while reading the sources.
pub(super) struct Merged {
    pub table: Table,
    origin: HashMap<String, String>,
    pub errors: Vec<String>,
    /// Keys whose given value could not be read, left at their default.
    pub soundness: Soundness,
}

impl Merged {
    pub fn new(defaults: &Table) -> Merged {
        Merged {
            table: defaults.clone(),
            origin: HashMap::new(),
            errors: Vec::new(),
            soundness: Soundness::default(),
        }
    }

    /// ` (from AMI_X)` for a value that came from a source other than the defaults.
    pub fn origin_of(&self, key: &str) -> String {
        self.origin
            .get(key)
            .map(|from| format!(" (from {from})"))
            .unwrap_or_default()
    }

    /// The TOML file `path`; every key must be one of the defaults'.
    pub fn file(&mut self, path: &str) {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => {
                self.errors
                    .push(format!("AMI_CONFIG: cannot read {}: {e}", shown(path)));
                return;
            }
        };
        let file: Table = match toml::from_str(&text) {
            Ok(file) => file,
            Err(e) => {
                self.errors
                    .push(format!("{}: {}", shown(path), syntax_error(&e, &text)));
                return;
            }
        };
        for (key, value) in file {
            if self.table.contains_key(&key) {
                self.origin
                    .insert(key.clone(), format!("file {}", shown(path)));
                self.table.insert(key, value);
            } else {
                self.errors
                    .push(format!("{}: unknown key `{}`", shown(path), shown(&key)));
            }
        }
    }

    /// `AMI_<KEY>` for every key, typed like the key's default; then the aliases.
    pub fn environment(&mut self, env: &HashMap<String, String>) {
        let keys: Vec<String> = self.table.keys().cloned().collect();
        for key in keys {
            let var = format!("AMI_{}", key.to_ascii_uppercase());
            let (var, raw) = match env.get(&var) {
                Some(raw) => (var, raw),
                None if key == "database_url" => match env.get("DATABASE_URL") {
                    Some(raw) => ("DATABASE_URL".to_owned(), raw),
                    None => continue,
                },
                None => continue,
            };
            let Some(default) = self.table.get(&key) else {
                continue;
            };
            match env_value(default, raw) {
                Ok(value) => {
                    self.table.insert(key.clone(), value);
                    self.origin.insert(key, var);
                }
                Err(why) => {
                    self.errors.push(format!("{var}: {why}"));
                    self.soundness.replaced(Path::key(&key));
                }
            }
        }
        if let Some(port) = env.get("PORT").filter(|_| !env.contains_key("AMI_LISTEN")) {
            match port.trim().parse::<u16>() {
                Ok(port) => {
                    self.table
                        .insert("listen".into(), Value::String(format!("0.0.0.0:{port}")));
                    self.origin.insert("listen".into(), "PORT".into());
                }
                Err(_) => {
                    self.errors
                        .push(format!("PORT: `{}` is not a port number", shown(port)));
                    self.soundness.replaced(Path::key("listen"));
                }
            }
        }
    }
}

/// An environment value typed like the key's default: strings verbatim, others as TOML.
fn env_value(default: &Value, raw: &str) -> Result<Value, String> {
    match default {
        Value::String(_) => Ok(Value::String(raw.to_owned())),
        Value::Boolean(_) => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(Value::Boolean(true)),
            "false" | "0" | "no" | "off" => Ok(Value::Boolean(false)),
            _ => Err(format!("`{}` is not a boolean (true or false)", shown(raw))),
        },
        _ => {
            let doc = format!("v = {raw}");
            let mut parsed: Table = toml::from_str(&doc).map_err(|e| {
                format!(
                    "not a TOML {}: {}",
                    default.type_str(),
                    syntax_error(&e, &doc)
                )
            })?;
            parsed
                .remove("v")
                .ok_or_else(|| "not a TOML value".to_owned())
        }
    }
}

/// A TOML syntax error by position only: the offending line may hold a secret.
pub(super) fn syntax_error(e: &toml::de::Error, text: &str) -> String {
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {}", e.message())
        }
        None => e.message().to_owned(),
    }
}
