//! Terragrunt's built-in functions and the common Terraform ones, as `hcl-rs` function definitions.
//!
//! Functions that read files record the read in the thread's evaluation state (see [`crate::eval`]) before doing
//! anything else, so a read is known even when the call then fails. Nothing here runs a command: `run_cmd` always
//! fails, and so does anything that would need AWS or the network.

use crate::eval::{
    current_frame, observe_unit_dir, read_config, record_read, repo_path, search_parent_folders, with_state,
};
use crate::snapshot::{self, relative_path, to_absolute};
use hcl::eval::{Context, Evaluate, FuncArgs, FuncDef, ParamType};
use hcl::expr::Expression;
use hcl::{Map, Value};

type Func = fn(FuncArgs) -> Result<Value, String>;

/// The definition of the function `name`, if detection implements it.
pub fn definition(name: &str) -> Option<FuncDef> {
    use ParamType::{Any, String as Str};
    let (func, params, variadic): (Func, Vec<ParamType>, Option<ParamType>) = match name {
        // terragrunt: paths and context
        "find_in_parent_folders" => (find_in_parent_folders, vec![], Some(Any)),
        "get_terragrunt_dir" => (get_terragrunt_dir, vec![], None),
        "get_parent_terragrunt_dir" => (get_parent_terragrunt_dir, vec![], Some(Str)),
        "get_original_terragrunt_dir" => (get_original_terragrunt_dir, vec![], None),
        "get_repo_root" => (get_repo_root, vec![], None),
        "get_path_to_repo_root" => (get_path_to_repo_root, vec![], None),
        "get_path_from_repo_root" => (get_path_from_repo_root, vec![], None),
        "path_relative_to_include" => (path_relative_to_include, vec![], Some(Str)),
        "path_relative_from_include" => (path_relative_from_include, vec![], Some(Str)),
        "get_env" => (get_env, vec![Str], Some(Any)),
        "get_platform" => (|_| Ok(Value::from("linux")), vec![], None),
        "get_terraform_command" => (|_| Ok(Value::from("plan")), vec![], None),
        "get_terraform_cli_args" => (|_| Ok(Value::Array(vec![])), vec![], None),
        "get_terraform_commands_that_need_locking" => (commands_need_locking, vec![], None),
        "get_terraform_commands_that_need_vars" => (commands_need_vars, vec![], None),
        "get_terraform_commands_that_need_input" => (commands_need_input, vec![], None),
        "get_terraform_commands_that_need_parallelism" => (commands_need_parallelism, vec![], None),
        "run_cmd" => (run_cmd, vec![], Some(Any)),
        // terragrunt: reads
        "read_terragrunt_config" => (read_terragrunt_config, vec![Str], Some(Any)),
        "read_tfvars_file" => (read_tfvars_file, vec![Str], None),
        "sops_decrypt_file" => (sops_decrypt_file, vec![Str], None),
        "mark_as_read" => (mark_as_read, vec![Str], None),
        "mark_glob_as_read" => (mark_glob_as_read, vec![Str], None),
        // terraform: files and paths
        "file" => (file, vec![Str], None),
        "fileexists" => (fileexists, vec![Str], None),
        "templatefile" => (templatefile, vec![Str], Some(Any)),
        "dirname" => (|a| Ok(Value::from(a[0].as_str().map(dirname).unwrap_or_default())), vec![Str], None),
        "basename" => (|a| Ok(Value::from(a[0].as_str().map(basename).unwrap_or_default())), vec![Str], None),
        "abspath" => (abspath, vec![Str], None),
        // terraform: strings
        crate::parsed::CONCAT => (concat_strings, vec![], Some(Any)),
        "format" => (format, vec![Str], Some(Any)),
        "lower" => (|a| Ok(Value::from(string(&a[0])?.to_lowercase())), vec![Str], None),
        "upper" => (|a| Ok(Value::from(string(&a[0])?.to_uppercase())), vec![Str], None),
        "trimspace" => (|a| Ok(Value::from(string(&a[0])?.trim())), vec![Str], None),
        "trimprefix" => (trimprefix, vec![Str, Str], None),
        "trimsuffix" => (trimsuffix, vec![Str, Str], None),
        "trim" => (trim, vec![Str, Str], None),
        "replace" => (replace, vec![Str, Str, Str], None),
        "split" => (split, vec![Str, Str], None),
        "join" => (join, vec![Str], Some(Any)),
        "startswith" => (|a| Ok(Value::from(string(&a[0])?.starts_with(string(&a[1])?))), vec![Str, Str], None),
        "endswith" => (|a| Ok(Value::from(string(&a[0])?.ends_with(string(&a[1])?))), vec![Str, Str], None),
        "tostring" => (tostring, vec![Any], None),
        "jsondecode" => (jsondecode, vec![Str], None),
        "jsonencode" => (jsonencode, vec![Any], None),
        // terraform: collections
        "concat" => (concat, vec![], Some(Any)),
        "merge" => (merge, vec![], Some(Any)),
        "lookup" => (lookup, vec![Any, Str], Some(Any)),
        "element" => (element, vec![Any, Any], None),
        "length" => (length, vec![Any], None),
        "coalesce" => (coalesce, vec![], Some(Any)),
        "contains" => (contains, vec![Any, Any], None),
        "keys" => (keys, vec![Any], None),
        "values" => (values, vec![Any], None),
        "flatten" => (flatten, vec![Any], None),
        "distinct" => (distinct, vec![Any], None),
        "compact" => (compact, vec![Any], None),
        "reverse" => (reverse, vec![Any], None),
        "tolist" | "toset" => (tolist, vec![Any], None),
        "tomap" => (|a| Ok(a[0].clone()), vec![Any], None),
        _ => return None,
    };
    let mut builder = FuncDef::builder().params(params);
    if let Some(v) = variadic {
        builder = builder.variadic_param(v);
    }
    Some(builder.build(func))
}

fn string(value: &Value) -> Result<&str, String> {
    value.as_str().ok_or_else(|| format!("expected a string, got {value}"))
}

fn array(value: &Value) -> Result<&Vec<Value>, String> {
    value.as_array().ok_or_else(|| format!("expected a list, got {value}"))
}

fn dirname(path: &str) -> String {
    match path.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) => "/".to_owned(),
        Some((dir, _)) => dir.to_owned(),
        None => ".".to_owned(),
    }
}

fn basename(path: &str) -> String {
    path.trim_end_matches('/').rsplit('/').next().unwrap_or_default().to_owned()
}

// ----- terragrunt: paths and context -----

fn find_in_parent_folders(args: FuncArgs) -> Result<Value, String> {
    let name = match args.first() {
        None => "terragrunt.hcl",
        Some(v) => string(v)?,
    };
    let frame = current_frame()?;
    // Terragrunt starts in the parent of the terragrunt dir and walks up to the root.
    let start = snapshot::parent(&frame.terragrunt_dir);
    match search_parent_folders(start, name)? {
        Some(found) => Ok(Value::from(to_absolute(&found))),
        None => args
            .get(1)
            .cloned()
            .ok_or_else(|| format!("find_in_parent_folders: no {name:?} in {start:?} or any folder above it")),
    }
}

fn get_terragrunt_dir(_: FuncArgs) -> Result<Value, String> {
    observe_unit_dir(false);
    Ok(Value::from(to_absolute(&current_frame()?.terragrunt_dir)))
}

fn include_dir(args: &FuncArgs) -> Result<String, String> {
    let frame = current_frame()?;
    if let Some(name) = args.first().and_then(Value::as_str) {
        observe_unit_dir(true);
        if let Some((_, dir)) = frame.includes.iter().find(|(n, _)| n == name) {
            return Ok(dir.clone());
        }
        return Err(format!("no include named {name:?}"));
    }
    Ok(frame.include_dir.unwrap_or(frame.terragrunt_dir))
}

fn get_parent_terragrunt_dir(args: FuncArgs) -> Result<Value, String> {
    Ok(Value::from(to_absolute(&include_dir(&args)?)))
}

fn get_original_terragrunt_dir(_: FuncArgs) -> Result<Value, String> {
    observe_unit_dir(true);
    Ok(Value::from(to_absolute(&current_frame()?.original_dir)))
}

fn get_repo_root(_: FuncArgs) -> Result<Value, String> {
    Ok(Value::from(snapshot::VIRTUAL_ROOT))
}

fn get_path_to_repo_root(_: FuncArgs) -> Result<Value, String> {
    observe_unit_dir(false);
    Ok(Value::from(relative_path(&current_frame()?.terragrunt_dir, "")))
}

fn get_path_from_repo_root(_: FuncArgs) -> Result<Value, String> {
    observe_unit_dir(false);
    Ok(Value::from(relative_path("", &current_frame()?.terragrunt_dir)))
}

fn path_relative_to_include(args: FuncArgs) -> Result<Value, String> {
    observe_unit_dir(true);
    let frame = current_frame()?;
    Ok(Value::from(relative_path(&include_dir(&args)?, &frame.terragrunt_dir)))
}

fn path_relative_from_include(args: FuncArgs) -> Result<Value, String> {
    observe_unit_dir(true);
    let frame = current_frame()?;
    Ok(Value::from(relative_path(&frame.terragrunt_dir, &include_dir(&args)?)))
}

/// `get_env` evaluates to its default: detection must not depend on the CI runner's environment.
fn get_env(args: FuncArgs) -> Result<Value, String> {
    Ok(args.get(1).cloned().unwrap_or_else(|| Value::from("")))
}

fn command_list(commands: &[&str]) -> Result<Value, String> {
    Ok(Value::Array(commands.iter().map(|c| Value::from(*c)).collect()))
}

fn commands_need_locking(_: FuncArgs) -> Result<Value, String> {
    command_list(&["apply", "destroy", "import", "init", "plan", "refresh", "taint", "untaint"])
}

fn commands_need_vars(_: FuncArgs) -> Result<Value, String> {
    command_list(&["apply", "console", "destroy", "import", "plan", "push", "refresh"])
}

fn commands_need_input(_: FuncArgs) -> Result<Value, String> {
    command_list(&["apply", "import", "init", "plan", "refresh"])
}

fn commands_need_parallelism(_: FuncArgs) -> Result<Value, String> {
    command_list(&["apply", "plan", "destroy"])
}

fn run_cmd(_: FuncArgs) -> Result<Value, String> {
    Err("run_cmd is never executed during change detection".to_owned())
}

// ----- reads -----

/// Resolves a path argument and records it as read.
fn read_path(value: &Value) -> Result<String, String> {
    let path = repo_path(string(value)?)?;
    record_read(&path);
    Ok(path)
}

fn read_terragrunt_config(args: FuncArgs) -> Result<Value, String> {
    let path = read_path(&args[0])?;
    let exists = with_state(|s| s.shared.snapshot.entry(&path).is_some())?;
    match (exists, args.get(1)) {
        (false, Some(default)) => Ok(default.clone()),
        (false, None) => Err(format!("read_terragrunt_config: {path} does not exist")),
        (true, _) => read_config(&path),
    }
}

fn read_text(path: &str) -> Result<String, String> {
    let bytes = with_state(|s| s.shared.snapshot.read(path))?.map_err(|e| {
        let message = e.to_string();
        let _ = with_state(|s| s.reads.warnings.push(message.clone()));
        message
    })?;
    let bytes = bytes.ok_or_else(|| format!("{path} does not exist"))?;
    String::from_utf8(bytes).map_err(|_| format!("{path} is not UTF-8 text"))
}

fn read_tfvars_file(args: FuncArgs) -> Result<Value, String> {
    let path = read_path(&args[0])?;
    let text = read_text(&path)?;
    if path.ends_with(".json") {
        return json_to_value(&text);
    }
    let body = hcl::parse(&text).map_err(|e| format!("{path}: {e}"))?;
    let ctx = Context::new();
    let mut values = Map::new();
    for attr in body.attributes() {
        values.insert(attr.key.to_string(), attr.expr.evaluate(&ctx).map_err(|e| e.to_string())?);
    }
    Ok(Value::Object(values))
}

fn sops_decrypt_file(args: FuncArgs) -> Result<Value, String> {
    read_path(&args[0])?;
    Err("sops_decrypt_file: secrets are never decrypted during change detection".to_owned())
}

fn mark_as_read(args: FuncArgs) -> Result<Value, String> {
    if string(&args[0])?.is_empty() {
        return Err("mark_as_read: empty path".to_owned());
    }
    Ok(Value::from(to_absolute(&read_path(&args[0])?)))
}

fn mark_glob_as_read(args: FuncArgs) -> Result<Value, String> {
    let frame = current_frame()?;
    let pattern = string(&args[0])?;
    if !pattern.starts_with('/') {
        observe_unit_dir(false);
    }
    let absolute = snapshot::join(&to_absolute(&frame.terragrunt_dir), pattern);
    let relative =
        snapshot::to_repo_relative(&absolute).ok_or_else(|| format!("glob {pattern:?} leaves the repository"))?;
    let matcher = crate::reads::compile_glob(&relative).map_err(|e| e.to_string())?;
    let matches: Vec<Value> = with_state(|s| {
        s.reads.globs.insert(relative.clone());
        let mut found: Vec<String> =
            s.shared.snapshot.paths().filter(|p| matcher.is_match(p)).map(to_absolute).collect();
        found.sort();
        found.into_iter().map(Value::from).collect()
    })?;
    Ok(Value::Array(matches))
}

fn file(args: FuncArgs) -> Result<Value, String> {
    let path = read_path(&args[0])?;
    read_text(&path).map(Value::from)
}

fn fileexists(args: FuncArgs) -> Result<Value, String> {
    let path = read_path(&args[0])?;
    Ok(Value::from(with_state(|s| s.shared.snapshot.entry(&path).is_some())?))
}

fn templatefile(args: FuncArgs) -> Result<Value, String> {
    read_path(&args[0])?;
    Err("templatefile: templates are not rendered during change detection".to_owned())
}

fn abspath(args: FuncArgs) -> Result<Value, String> {
    let frame = current_frame()?;
    let path = string(&args[0])?;
    if !path.starts_with('/') {
        observe_unit_dir(false);
    }
    let absolute = snapshot::join(&to_absolute(&frame.terragrunt_dir), path);
    let relative = snapshot::to_repo_relative(&absolute).ok_or("abspath: path leaves the repository")?;
    Ok(Value::from(to_absolute(&relative)))
}

// ----- strings -----

fn display(value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Ok(String::new()),
        other => Err(format!("cannot convert {other} to a string")),
    }
}

/// A lowered template: each part converted to a string as interpolation does, then joined.
fn concat_strings(args: FuncArgs) -> Result<Value, String> {
    let mut out = String::new();
    for part in args.iter() {
        match part {
            Value::Null => return Err("cannot interpolate null".to_owned()),
            other => out.push_str(&display(other)?),
        }
    }
    Ok(Value::from(out))
}

fn format(args: FuncArgs) -> Result<Value, String> {
    let spec = string(&args[0])?;
    let mut rest = args[1..].iter();
    let mut out = String::new();
    let mut chars = spec.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('s' | 'd' | 'v' | 'q') => {
                let value = rest.next().ok_or("format: too few arguments")?;
                out.push_str(&display(value)?);
            }
            other => return Err(format!("format: unsupported verb %{}", other.unwrap_or(' '))),
        }
    }
    Ok(Value::from(out))
}

fn trimprefix(args: FuncArgs) -> Result<Value, String> {
    let (s, p) = (string(&args[0])?, string(&args[1])?);
    Ok(Value::from(s.strip_prefix(p).unwrap_or(s)))
}

fn trimsuffix(args: FuncArgs) -> Result<Value, String> {
    let (s, p) = (string(&args[0])?, string(&args[1])?);
    Ok(Value::from(s.strip_suffix(p).unwrap_or(s)))
}

fn trim(args: FuncArgs) -> Result<Value, String> {
    let cut: Vec<char> = string(&args[1])?.chars().collect();
    Ok(Value::from(string(&args[0])?.trim_matches(|c| cut.contains(&c))))
}

fn replace(args: FuncArgs) -> Result<Value, String> {
    let (s, from, to) = (string(&args[0])?, string(&args[1])?, string(&args[2])?);
    if from.len() > 1 && from.starts_with('/') && from.ends_with('/') {
        let re = regex::Regex::new(&from[1..from.len() - 1]).map_err(|e| e.to_string())?;
        return Ok(Value::from(re.replace_all(s, to.replace('$', "$$").as_str()).into_owned()));
    }
    Ok(Value::from(s.replace(from, to)))
}

fn split(args: FuncArgs) -> Result<Value, String> {
    let (sep, s) = (string(&args[0])?, string(&args[1])?);
    Ok(Value::Array(s.split(sep).map(Value::from).collect()))
}

fn join(args: FuncArgs) -> Result<Value, String> {
    let sep = string(&args[0])?;
    let mut parts = Vec::new();
    for list in &args[1..] {
        for item in array(list)? {
            parts.push(display(item)?);
        }
    }
    Ok(Value::from(parts.join(sep)))
}

fn tostring(args: FuncArgs) -> Result<Value, String> {
    Ok(Value::from(display(&args[0])?))
}

fn jsondecode(args: FuncArgs) -> Result<Value, String> {
    json_to_value(string(&args[0])?)
}

fn json_to_value(text: &str) -> Result<Value, String> {
    let json: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    hcl::to_value(json).map_err(|e| e.to_string())
}

fn jsonencode(args: FuncArgs) -> Result<Value, String> {
    serde_json::to_string(&args[0]).map(Value::from).map_err(|e| e.to_string())
}

// ----- collections -----

fn concat(args: FuncArgs) -> Result<Value, String> {
    let mut out = Vec::new();
    for list in args.iter() {
        out.extend(array(list)?.iter().cloned());
    }
    Ok(Value::Array(out))
}

fn merge(args: FuncArgs) -> Result<Value, String> {
    let mut out = Map::new();
    for object in args.iter() {
        match object {
            Value::Object(o) => out.extend(o.iter().map(|(k, v)| (k.clone(), v.clone()))),
            Value::Null => {}
            other => return Err(format!("merge: expected objects, got {other}")),
        }
    }
    Ok(Value::Object(out))
}

fn lookup(args: FuncArgs) -> Result<Value, String> {
    let key = string(&args[1])?;
    match args[0].as_object().and_then(|o| o.get(key)) {
        Some(v) => Ok(v.clone()),
        None => args.get(2).cloned().ok_or_else(|| format!("lookup: no key {key:?}")),
    }
}

fn element(args: FuncArgs) -> Result<Value, String> {
    let list = array(&args[0])?;
    let index = args[1].as_number().and_then(|n| n.as_u64()).ok_or("element: index must be a whole number")?;
    if list.is_empty() {
        return Err("element: empty list".to_owned());
    }
    let index = usize::try_from(index).map_err(|e| e.to_string())? % list.len();
    Ok(list[index].clone())
}

fn length(args: FuncArgs) -> Result<Value, String> {
    Ok(Value::from(match &args[0] {
        Value::Array(a) => a.len(),
        Value::Object(o) => o.len(),
        Value::String(s) => s.chars().count(),
        other => return Err(format!("length: unsupported {other}")),
    }))
}

fn coalesce(args: FuncArgs) -> Result<Value, String> {
    args.iter()
        .find(|v| !v.is_null() && v.as_str() != Some(""))
        .cloned()
        .ok_or_else(|| "coalesce: no non-null arguments".to_owned())
}

fn contains(args: FuncArgs) -> Result<Value, String> {
    Ok(Value::from(array(&args[0])?.contains(&args[1])))
}

fn keys(args: FuncArgs) -> Result<Value, String> {
    let object = args[0].as_object().ok_or("keys: expected an object")?;
    Ok(Value::Array(object.keys().map(|k| Value::from(k.as_str())).collect()))
}

fn values(args: FuncArgs) -> Result<Value, String> {
    let object = args[0].as_object().ok_or("values: expected an object")?;
    Ok(Value::Array(object.values().cloned().collect()))
}

fn flatten(args: FuncArgs) -> Result<Value, String> {
    fn go(value: &Value, out: &mut Vec<Value>) {
        match value {
            Value::Array(items) => items.iter().for_each(|i| go(i, out)),
            other => out.push(other.clone()),
        }
    }
    let mut out = Vec::new();
    go(&args[0], &mut out);
    Ok(Value::Array(out))
}

fn distinct(args: FuncArgs) -> Result<Value, String> {
    let mut out: Vec<Value> = Vec::new();
    for item in array(&args[0])? {
        if !out.contains(item) {
            out.push(item.clone());
        }
    }
    Ok(Value::Array(out))
}

fn compact(args: FuncArgs) -> Result<Value, String> {
    Ok(Value::Array(array(&args[0])?.iter().filter(|v| !v.is_null() && v.as_str() != Some("")).cloned().collect()))
}

fn reverse(args: FuncArgs) -> Result<Value, String> {
    Ok(Value::Array(array(&args[0])?.iter().rev().cloned().collect()))
}

fn tolist(args: FuncArgs) -> Result<Value, String> {
    Ok(Value::Array(array(&args[0])?.clone()))
}

// ----- try and can -----

/// Replaces `try(...)` with its first argument that evaluates and `can(x)` with whether `x` evaluates.
///
/// Terraform evaluates their arguments lazily; `hcl-rs` evaluates every argument before calling a function, so
/// they can't be ordinary functions. Rewriting first keeps `try(local.x, "default")` working.
pub fn resolve_try_and_can(expr: &Expression, ctx: &Context) -> Expression {
    let recurse = |e: &Expression| resolve_try_and_can(e, ctx);
    match expr {
        Expression::FuncCall(call)
            if call.name.namespace.is_empty() && matches!(call.name.name.as_str(), "try" | "can") =>
        {
            let args: Vec<Expression> = call.args.iter().map(recurse).collect();
            if call.name.name.as_str() == "can" {
                return Expression::Bool(args.first().is_some_and(|a| a.evaluate(ctx).is_ok()));
            }
            args.iter().find_map(|a| a.evaluate(ctx).ok()).map(Expression::from).unwrap_or_else(|| expr.clone())
        }
        other => crate::parsed::map_children(other, &recurse),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn try_and_can_evaluate_lazily() {
        let mut ctx = Context::new();
        ctx.declare_var("x", "value");
        ctx.declare_var("local", Value::Object(Map::new()));
        let cases = [
            (r#"try(local.missing, "fallback")"#, Value::from("fallback")),
            (r#"try(x, "fallback")"#, Value::from("value")),
            (r#"[try(local.a, local.b, "third")]"#, Value::Array(vec![Value::from("third")])),
            ("can(local.missing)", Value::Bool(false)),
            ("can(x)", Value::Bool(true)),
            (r#"true ? try(local.nope, "deep") : "no""#, Value::from("deep")),
        ];
        for (text, expected) in cases {
            let expr: Expression = text.parse().expect(text);
            let value = resolve_try_and_can(&expr, &ctx).evaluate(&ctx).expect(text);
            assert_eq!(value, expected, "{text}");
        }
    }
}
