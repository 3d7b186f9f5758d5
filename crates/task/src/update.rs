//! `update-variable`: set one entry of a unit's `inputs` with hcl-edit, keeping comments and formatting.

use hcl_edit::expr::{Expression, ObjectKey};
use hcl_edit::structure::Body;
use hcl_edit::Decorate;

/// Why the edit could not be made.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// The file is not valid HCL.
    #[error("{file} is not valid HCL: {message}")]
    Parse {
        /// The file.
        file: String,
        /// The parser's message.
        message: String,
    },
    /// There is no top-level `inputs = { ... }` object.
    #[error("{0} has no top-level `inputs = {{ ... }}` object")]
    NoInputs(String),
    /// The variable is not set in `inputs`.
    #[error("{file}: `inputs` has no entry {variable:?}; add it by hand once, then it can be updated")]
    NoVariable {
        /// The file.
        file: String,
        /// The variable.
        variable: String,
    },
}

/// The result of an edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edited {
    /// The new text.
    Changed(String),
    /// The variable already has this value.
    Unchanged,
}

/// Sets `inputs.<variable> = "<value>"` in `text`, keeping everything else byte for byte.
pub fn set_input(file: &str, text: &str, variable: &str, value: &str) -> Result<Edited, UpdateError> {
    let mut body: Body = text
        .parse()
        .map_err(|e: hcl_edit::parser::Error| UpdateError::Parse { file: file.to_owned(), message: e.to_string() })?;
    let mut changed = false;
    {
        let Some(mut inputs) = body.get_attribute_mut("inputs") else {
            return Err(UpdateError::NoInputs(file.to_owned()));
        };
        let Expression::Object(object) = inputs.value_mut() else {
            return Err(UpdateError::NoInputs(file.to_owned()));
        };
        for (key, entry) in object.iter_mut() {
            let name = match key.get() {
                ObjectKey::Ident(ident) => ident.as_str().to_owned(),
                ObjectKey::Expression(Expression::String(s)) => s.as_str().to_owned(),
                ObjectKey::Expression(_) => continue,
            };
            if name != variable {
                continue;
            }
            if matches!(entry.expr(), Expression::String(s) if s.as_str() == value) {
                return Ok(Edited::Unchanged);
            }
            let decor = entry.expr().decor().clone();
            let mut replacement = Expression::from(value);
            *replacement.decor_mut() = decor;
            *entry.expr_mut() = replacement;
            changed = true;
            break;
        }
    }
    if changed {
        return Ok(Edited::Changed(body.to_string()));
    }
    Err(UpdateError::NoVariable { file: file.to_owned(), variable: variable.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNIT: &str = r#"# The orders service in dev.
include "root" {
  path = find_in_parent_folders("root.hcl") # shared settings
}

inputs = {
  # Bumped by the app pipeline.
  image_version = "v1.0.0" # keep me
  replicas      = 2
  "quoted-key"  = "x"
}
"#;

    #[test]
    fn keeps_comments_and_layout() {
        let Edited::Changed(text) = set_input("t.hcl", UNIT, "image_version", "v1.1.0").expect("edit") else {
            panic!("expected a change")
        };
        assert_eq!(text, UNIT.replace("\"v1.0.0\"", "\"v1.1.0\""));
        assert_eq!(set_input("t.hcl", &text, "image_version", "v1.1.0").expect("edit"), Edited::Unchanged);
        let Edited::Changed(quoted) = set_input("t.hcl", UNIT, "quoted-key", "y").expect("edit") else { panic!() };
        assert!(quoted.contains("\"quoted-key\"  = \"y\""), "{quoted}");
    }

    #[test]
    fn clear_errors() {
        assert!(matches!(set_input("t.hcl", UNIT, "ami", "x"), Err(UpdateError::NoVariable { .. })));
        assert!(matches!(set_input("t.hcl", "locals {}", "ami", "x"), Err(UpdateError::NoInputs(_))));
        assert!(matches!(set_input("t.hcl", "inputs = merge({}, {})", "ami", "x"), Err(UpdateError::NoInputs(_))));
        assert!(matches!(set_input("t.hcl", "inputs = {", "ami", "x"), Err(UpdateError::Parse { .. })));
    }
}
