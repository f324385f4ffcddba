//! Reading keys of config.json's object: each vendor reads its own section
//! with these (and `config.rs` the keys every source shares), so that every
//! problem is one line naming the file and the key, the same for all.

use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum KeyError {
    #[error("{path}: field \"{field}\" is missing")]
    Missing { path: PathBuf, field: &'static str },
    #[error("{path}: field \"{field}\" {problem}")]
    Invalid {
        path: PathBuf,
        field: &'static str,
        problem: String,
    },
    /// A declared REST API's error, naming the file and the key.
    #[error("{message}")]
    Declared { message: String },
}

/// The keys of one config file's object.
#[derive(Clone, Copy)]
pub struct Keys<'a> {
    /// The file, for messages only.
    pub path: &'a Path,
    pub obj: &'a Map<String, Value>,
}

impl<'a> Keys<'a> {
    pub fn new(path: &'a Path, obj: &'a Map<String, Value>) -> Keys<'a> {
        Keys { path, obj }
    }

    /// The value of `field`, unless absent or null.
    pub fn get(&self, field: &str) -> Option<&'a Value> {
        self.obj.get(field).filter(|v| !v.is_null())
    }

    /// `field`'s problem, as an error naming the file and the key.
    pub fn invalid(&self, field: &'static str, problem: impl Into<String>) -> KeyError {
        KeyError::Invalid {
            path: self.path.to_path_buf(),
            field,
            problem: problem.into(),
        }
    }

    /// A string that must be there and not be blank.
    pub fn required_str(&self, field: &'static str) -> Result<String, KeyError> {
        match self.get(field) {
            None => Err(KeyError::Missing {
                path: self.path.to_path_buf(),
                field,
            }),
            Some(Value::String(s)) if s.trim().is_empty() => Err(self.invalid(field, "is empty")),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => {
                Err(self.invalid(field, format!("must be a string, not {}", type_name(other))))
            }
        }
    }

    /// A string that may be absent (or null), else as [`Keys::required_str`].
    pub fn optional_nonblank(&self, field: &'static str) -> Result<Option<String>, KeyError> {
        match self.get(field) {
            None => Ok(None),
            Some(_) => self.required_str(field).map(Some),
        }
    }

    /// A string that may be absent (or null), blank included.
    pub fn optional_str(&self, field: &'static str) -> Result<Option<String>, KeyError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => {
                Err(self.invalid(field, format!("must be a string, not {}", type_name(other))))
            }
        }
    }
}

/// How a JSON value's type is named in messages.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// An API's base URL (`field` of `path`), ending in `/`.
pub fn normalize_server(path: &Path, field: &'static str, raw: &str) -> Result<String, KeyError> {
    let mut out = normalize_url(path, field, raw)?;
    if !out.ends_with('/') {
        out.push('/');
    }
    Ok(out)
}

/// An http(s) URL without query, fragment or credentials.
pub fn normalize_url(path: &Path, field: &'static str, raw: &str) -> Result<String, KeyError> {
    let s = raw.trim();
    // Messages show the URL without credentials.
    let shown = crate::secret::strip_userinfo(s);
    let invalid = |problem: String| KeyError::Invalid {
        path: path.to_path_buf(),
        field,
        problem,
    };
    let url =
        reqwest::Url::parse(s).map_err(|e| invalid(format!("is not a URL ({e}): {shown:?}")))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(invalid(format!("must start with https:// ({shown:?})")));
    }
    if url.host_str().is_none() {
        return Err(invalid(format!("has no host ({shown:?})")));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(invalid(format!(
            "must be a plain base URL such as https://api-vip.elastica.net/, without query or credentials ({shown:?})"
        )));
    }
    Ok(url.to_string())
}
