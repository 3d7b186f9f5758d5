//! A terragrunt config parsed once and indexed by what detection needs: locals, includes, dependency paths,
//! the terraform source and every other expression that might read a file.

use hcl::expr::{Expression, FuncCall, TemplateExpr};
use hcl::template::{Element, Template};
use hcl::{Block, Body, Structure};
use std::collections::HashSet;

/// The internal function that quoted templates are lowered to (see [`lower_templates`]).
pub const CONCAT: &str = "__deploy_runner_concat";

/// Functions whose first argument is a path that the config reads (or probes).
pub const READ_FUNCTIONS: [&str; 9] = [
    "read_terragrunt_config",
    "read_tfvars_file",
    "sops_decrypt_file",
    "mark_as_read",
    "mark_glob_as_read",
    "file",
    "templatefile",
    "fileexists",
    "find_in_parent_folders",
];

/// An `include` block.
#[derive(Debug, Clone)]
pub struct IncludeSpec {
    /// The block label (`""` for the old unlabelled form).
    pub name: String,
    /// The `path` expression.
    pub path: Expression,
}

/// A `unit` or `stack` block of a `terragrunt.stack.hcl`.
#[derive(Debug, Clone)]
pub struct StackBlock {
    /// `unit` or `stack`.
    pub kind: String,
    /// The block label.
    pub name: String,
    /// `source`: where the unit's (or stack's) folder is copied from.
    pub source: Option<Expression>,
    /// `path`: where it is generated, under `.terragrunt-stack/`.
    pub path: Option<Expression>,
    /// `values`, handed to the generated config.
    pub values: Option<Expression>,
    /// `no_dot_terragrunt_stack`: generate at `path` itself instead of under `.terragrunt-stack/`.
    pub no_dot: Option<Expression>,
}

/// A parsed config, indexed.
#[derive(Debug, Clone, Default)]
pub struct ParsedConfig {
    /// `locals { name = expr }`, in file order.
    pub locals: Vec<(String, Expression)>,
    /// `include` blocks.
    pub includes: Vec<IncludeSpec>,
    /// `dependency.config_path` and `dependencies.paths` expressions.
    pub dependency_paths: Vec<Expression>,
    /// `terraform { source = ... }`.
    pub terraform_source: Option<Expression>,
    /// `terraform { extra_arguments { required_var_files / optional_var_files } }`: lists of var files Terraform
    /// reads (an optional one that doesn't exist yet is still a read: adding it changes the plan).
    pub var_files: Vec<Expression>,
    /// Top-level attributes (`inputs`, ...), evaluated for `read_terragrunt_config` results and exposure.
    pub top_level: Vec<(String, Expression)>,
    /// Whether each top-level attribute calls a read function (the only reason to evaluate it in a unit).
    pub top_level_reads: Vec<bool>,
    /// Attributes inside other blocks that call a read function.
    pub nested_reads: Vec<Expression>,
    /// Every function name called anywhere in the file.
    pub functions: HashSet<String>,
    /// `unit` and `stack` blocks (in a `terragrunt.stack.hcl`).
    pub stack_blocks: Vec<StackBlock>,
    /// Whether any expression uses the `include` variable (`include.<name>.locals...`), so exposed values matter.
    pub references_include: bool,
}

/// Parses config text: HCL native syntax, or the JSON flavour for `*.hcl.json`.
pub fn parse_config(path: &str, text: &str) -> Result<ParsedConfig, String> {
    let body = if path.ends_with(".json") { json_to_body(text)? } else { parse_hcl(text)? };
    Ok(index(&body))
}

/// Most redefined object keys tolerated in one file (each costs a re-parse).
const MAX_DUPLICATE_KEYS: usize = 64;

/// Parses HCL native syntax as HCL itself does. HCL accepts an object constructor that repeats a key (`{ a = 1,
/// a = 2 }`: the last wins) and real repos carry such configs; hcl-rs refuses them. So each key it reports as
/// redefined has its *earlier* occurrence renamed out of the way and the text is parsed again: the object then
/// holds the last value under the key, as HCL's does, and the earlier value's expression is still seen (for its
/// reads). Anything else hcl-rs refuses stays an error.
pub fn parse_hcl(text: &str) -> Result<Body, String> {
    let mut text = std::borrow::Cow::Borrowed(text);
    for attempt in 0..=MAX_DUPLICATE_KEYS {
        match hcl::parse(&text) {
            Ok(body) => return Ok(body),
            Err(error) => {
                let message = error.to_string();
                let hcl::Error::Parse(parse) = &error else { return Err(message) };
                if attempt == MAX_DUPLICATE_KEYS || !message.contains("redefined object key") {
                    return Err(message);
                }
                let location = parse.location();
                let Some(renamed) = rename_earlier_key(&text, location.line(), location.column(), attempt) else {
                    return Err(message);
                };
                text = std::borrow::Cow::Owned(renamed);
            }
        }
    }
    Err("too many redefined object keys".to_owned())
}

/// Renames the earlier occurrence of the object key at `line`:`column` (1-based) of `text`: the nearest earlier
/// `key =` or `key:` at the same brace depth, inside the same object.
fn rename_earlier_key(text: &str, line: usize, column: usize, n: usize) -> Option<String> {
    let line_start: usize = text.split_inclusive('\n').take(line.saturating_sub(1)).map(str::len).sum();
    let at = line_start + text[line_start..].char_indices().nth(column.saturating_sub(1))?.0;
    let key: String = text[at..].chars().take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '"')).collect();
    if key.is_empty() {
        return None;
    }
    let bytes = text.as_bytes();
    let mut depth = 0i32;
    let mut i = at;
    while i > 0 {
        i -= 1;
        match bytes[i] {
            b'}' | b']' | b')' => depth += 1,
            b'{' | b'[' | b'(' => {
                depth -= 1;
                if depth < 0 {
                    return None; // left the object without finding it
                }
            }
            _ if depth == 0 && text[i..].starts_with(&key) => {
                let before_ok =
                    i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || matches!(bytes[i - 1], b'_' | b'-'));
                let after = text[i + key.len()..].trim_start_matches([' ', '\t']);
                if before_ok && (after.starts_with('=') || after.starts_with(':')) && !after.starts_with("==") {
                    let replacement = match key.strip_prefix('"') {
                        Some(quoted) => format!("\"__deploy_runner_shadowed_{n}_{quoted}"),
                        None => format!("__deploy_runner_shadowed_{n}_{key}"),
                    };
                    return Some(format!("{}{}{}", &text[..i], replacement, &text[i + key.len()..]));
                }
            }
            _ => {}
        }
    }
    None
}

/// The `dependency { config_path = "..." }` and `dependencies { paths = [...] }` paths written as plain literals,
/// found by scanning text that could not be parsed: enough to keep such a unit in dependency order. The flag says
/// whether every such path was a plain literal (otherwise some dependencies stay unknown).
pub fn literal_dependency_paths(text: &str) -> (Vec<String>, bool) {
    static CONFIG_PATH: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    static PATHS: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let config_path = CONFIG_PATH.get_or_init(|| {
        regex::Regex::new(r#"(?m)^\s*config_path\s*=\s*"([^"$%\\]*)"\s*(?:#.*|//.*)?$"#).expect("regex")
    });
    let paths = PATHS.get_or_init(|| regex::Regex::new(r#"(?s)\bpaths\s*=\s*\[([^\]]*)\]"#).expect("regex"));
    let literal = regex::Regex::new(r#""([^"$%\\]*)""#).expect("regex");
    let mut found: Vec<String> = config_path.captures_iter(text).map(|c| c[1].to_owned()).collect();
    let mut complete = found.len() == text.matches("config_path").count();
    for list in paths.captures_iter(text) {
        let items = list[1].split(',').filter(|i| !i.trim().is_empty()).count();
        let literals: Vec<String> = literal.captures_iter(&list[1]).map(|c| c[1].to_owned()).collect();
        complete &= literals.len() == items;
        found.extend(literals);
    }
    complete &=
        paths.find_iter(text).count() == regex::Regex::new(r"\bpaths\s*=").expect("regex").find_iter(text).count();
    found.retain(|p| !p.is_empty());
    (found, complete)
}

fn index(body: &Body) -> ParsedConfig {
    let mut parsed = ParsedConfig::default();
    for structure in body.iter() {
        match structure {
            Structure::Attribute(attr) => parsed.top_level.push((attr.key.to_string(), lower_templates(&attr.expr))),
            Structure::Block(block) => index_block(block, &mut parsed),
        }
    }
    // Everything kept is lowered already, so these walks never re-parse a template.
    let mut functions = HashSet::from([CONCAT.to_owned()]);
    let mut references_include = false;
    for expr in parsed.expressions() {
        walk(expr, &mut |e| match e {
            Expression::FuncCall(call) => {
                functions.insert(call.name.name.to_string());
            }
            Expression::Variable(v) if v.as_str() == "include" => references_include = true,
            _ => {}
        });
    }
    parsed.functions = functions;
    parsed.references_include = references_include;
    parsed.top_level_reads = parsed.top_level.iter().map(|(_, e)| calls_read_function(e)).collect();
    parsed
}

impl ParsedConfig {
    /// Every expression that evaluation may look at.
    fn expressions(&self) -> impl Iterator<Item = &Expression> {
        self.locals
            .iter()
            .map(|(_, e)| e)
            .chain(self.includes.iter().map(|i| &i.path))
            .chain(&self.dependency_paths)
            .chain(&self.terraform_source)
            .chain(&self.var_files)
            .chain(self.top_level.iter().map(|(_, e)| e))
            .chain(&self.nested_reads)
    }
}

/// Rewrites quoted templates made only of literals and interpolations (`"${a}/x/${b}"`) into calls of
/// [`CONCAT`]. `hcl-rs` re-parses a template's text every time it evaluates it; with 10,000 units including the
/// same files, that parsing dominated. Templates with directives or whitespace stripping are left alone.
pub fn lower_templates(expr: &Expression) -> Expression {
    let lower = |e: &Expression| lower_templates(e);
    match expr {
        Expression::TemplateExpr(template) if matches!(template.as_ref(), TemplateExpr::QuotedString(_)) => {
            let Ok(parsed) = Template::from_expr(template) else { return expr.clone() };
            let mut args = Vec::with_capacity(parsed.elements().len());
            for element in parsed.elements() {
                match element {
                    Element::Literal(text) => args.push(Expression::String(text.clone())),
                    Element::Interpolation(i) if i.strip == hcl::template::Strip::None => args.push(lower(&i.expr)),
                    _ => return expr.clone(),
                }
            }
            let mut call = FuncCall::new(CONCAT);
            call.args = args;
            Expression::FuncCall(Box::new(call))
        }
        other => map_children(other, &lower),
    }
}

/// Rebuilds `expr` with each direct sub-expression replaced by `f(sub)`; leaves are cloned. The one place that
/// knows how to take every kind of HCL expression apart, for the rewrites that need it.
pub fn map_children(expr: &Expression, f: &dyn Fn(&Expression) -> Expression) -> Expression {
    match expr {
        Expression::Array(items) => Expression::Array(items.iter().map(f).collect()),
        Expression::Object(object) => Expression::Object(object.iter().map(|(k, v)| (k.clone(), f(v))).collect()),
        Expression::FuncCall(call) => {
            let mut call = call.as_ref().clone();
            call.args = call.args.iter().map(f).collect();
            Expression::FuncCall(Box::new(call))
        }
        Expression::Parenthesis(inner) => Expression::Parenthesis(Box::new(f(inner))),
        Expression::Conditional(c) => {
            let mut c = c.as_ref().clone();
            c.cond_expr = f(&c.cond_expr);
            c.true_expr = f(&c.true_expr);
            c.false_expr = f(&c.false_expr);
            Expression::Conditional(Box::new(c))
        }
        Expression::Traversal(t) => {
            let mut t = t.as_ref().clone();
            t.expr = f(&t.expr);
            for op in &mut t.operators {
                if let hcl::expr::TraversalOperator::Index(e) = op {
                    *e = f(e);
                }
            }
            Expression::Traversal(Box::new(t))
        }
        Expression::Operation(op) => {
            let mut op = op.as_ref().clone();
            match &mut op {
                hcl::expr::Operation::Unary(u) => u.expr = f(&u.expr),
                hcl::expr::Operation::Binary(b) => {
                    b.lhs_expr = f(&b.lhs_expr);
                    b.rhs_expr = f(&b.rhs_expr);
                }
            }
            Expression::Operation(Box::new(op))
        }
        Expression::ForExpr(fe) => {
            let mut fe = fe.as_ref().clone();
            fe.collection_expr = f(&fe.collection_expr);
            fe.key_expr = fe.key_expr.as_ref().map(f);
            fe.value_expr = f(&fe.value_expr);
            fe.cond_expr = fe.cond_expr.as_ref().map(f);
            Expression::ForExpr(Box::new(fe))
        }
        other => other.clone(),
    }
}

fn index_block(block: &Block, parsed: &mut ParsedConfig) {
    let label = block.labels.first().map(|l| l.as_str().to_owned()).unwrap_or_default();
    let attr = |key: &str| block.body.attributes().find(|a| a.key.as_str() == key).map(|a| lower_templates(&a.expr));
    match block.identifier.as_str() {
        "locals" => {
            parsed.locals.extend(block.body.attributes().map(|a| (a.key.to_string(), lower_templates(&a.expr))))
        }
        "include" => {
            if let Some(path) = attr("path") {
                parsed.includes.push(IncludeSpec { name: label, path });
            }
        }
        "dependency" => {
            parsed.dependency_paths.extend(attr("config_path"));
            // mock_outputs and friends may still read files.
            collect_nested_reads(&block.body, parsed, &["config_path"]);
        }
        "dependencies" => parsed.dependency_paths.extend(attr("paths")),
        "unit" | "stack" => {
            parsed.stack_blocks.push(StackBlock {
                kind: block.identifier.as_str().to_owned(),
                name: label,
                source: attr("source"),
                path: attr("path"),
                values: attr("values"),
                no_dot: attr("no_dot_terragrunt_stack"),
            });
            collect_nested_reads(&block.body, parsed, &[]);
        }
        "terraform" => {
            parsed.terraform_source = attr("source");
            for arguments in block.body.blocks().filter(|b| b.identifier.as_str() == "extra_arguments") {
                for name in ["required_var_files", "optional_var_files"] {
                    let files = arguments.body.attributes().find(|a| a.key.as_str() == name);
                    parsed.var_files.extend(files.map(|a| lower_templates(&a.expr)));
                }
            }
            collect_nested_reads(&block.body, parsed, &["source"]);
        }
        _ => collect_nested_reads(&block.body, parsed, &[]),
    }
}

/// Records attributes (at any depth) that call a read function, skipping `skip` at the top of this body.
fn collect_nested_reads(body: &Body, parsed: &mut ParsedConfig, skip: &[&str]) {
    for structure in body.iter() {
        match structure {
            Structure::Attribute(attr) if !skip.contains(&attr.key.as_str()) => {
                let lowered = lower_templates(&attr.expr);
                if calls_read_function(&lowered) {
                    parsed.nested_reads.push(lowered);
                }
            }
            Structure::Attribute(_) => {}
            Structure::Block(block) => collect_nested_reads(&block.body, parsed, &[]),
        }
    }
}

/// True when `expr` calls any of [`READ_FUNCTIONS`].
fn calls_read_function(expr: &Expression) -> bool {
    let mut reads = false;
    walk(expr, &mut |e| {
        reads |= matches!(e, Expression::FuncCall(c) if READ_FUNCTIONS.contains(&c.name.name.as_str()))
    });
    reads
}

/// Calls `visit` on every sub-expression of `expr`, including those inside string templates.
pub fn walk(expr: &Expression, visit: &mut dyn FnMut(&Expression)) {
    visit(expr);
    match expr {
        Expression::Array(items) => items.iter().for_each(|e| walk(e, visit)),
        Expression::Object(object) => {
            for (key, value) in object {
                if let hcl::expr::ObjectKey::Expression(k) = key {
                    walk(k, visit);
                }
                walk(value, visit);
            }
        }
        Expression::TemplateExpr(template) => {
            for e in template_interpolations(template) {
                walk(&e, visit);
            }
        }
        Expression::Traversal(t) => {
            walk(&t.expr, visit);
            for op in &t.operators {
                if let hcl::expr::TraversalOperator::Index(e) = op {
                    walk(e, visit);
                }
            }
        }
        Expression::FuncCall(call) => call.args.iter().for_each(|e| walk(e, visit)),
        Expression::Parenthesis(e) => walk(e, visit),
        Expression::Conditional(c) => {
            walk(&c.cond_expr, visit);
            walk(&c.true_expr, visit);
            walk(&c.false_expr, visit);
        }
        Expression::Operation(op) => match op.as_ref() {
            hcl::expr::Operation::Unary(u) => walk(&u.expr, visit),
            hcl::expr::Operation::Binary(b) => {
                walk(&b.lhs_expr, visit);
                walk(&b.rhs_expr, visit);
            }
        },
        Expression::ForExpr(f) => {
            walk(&f.collection_expr, visit);
            if let Some(k) = &f.key_expr {
                walk(k, visit);
            }
            walk(&f.value_expr, visit);
            if let Some(c) = &f.cond_expr {
                walk(c, visit);
            }
        }
        _ => {}
    }
}

/// The expressions interpolated in a template, in order (including those inside directives).
pub fn template_interpolations(template: &TemplateExpr) -> Vec<Expression> {
    let Ok(parsed) = Template::from_expr(template) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    collect_template(parsed.elements(), &mut out);
    out
}

fn collect_template(elements: &[Element], out: &mut Vec<Expression>) {
    for element in elements {
        match element {
            Element::Literal(_) => {}
            Element::Interpolation(i) => out.push(i.expr.clone()),
            Element::Directive(d) => match d.as_ref() {
                hcl::template::Directive::If(i) => {
                    out.push(i.cond_expr.clone());
                    collect_template(i.true_template.elements(), out);
                    if let Some(f) = &i.false_template {
                        collect_template(f.elements(), out);
                    }
                }
                hcl::template::Directive::For(f) => {
                    out.push(f.collection_expr.clone());
                    collect_template(f.template.elements(), out);
                }
            },
        }
    }
}

/// Converts the JSON flavour of a terragrunt config into an HCL body: known block types become blocks, strings
/// become templates (as in HCL's JSON syntax), everything else an attribute.
fn json_to_body(text: &str) -> Result<Body, String> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let serde_json::Value::Object(top) = value else {
        return Err("a JSON config must be an object".into());
    };
    let mut hcl_text = String::new();
    for (key, value) in &top {
        match (key.as_str(), value) {
            ("locals" | "terraform" | "dependencies" | "remote_state", serde_json::Value::Object(o)) => {
                hcl_text.push_str(&format!("{key} {{\n{}}}\n", json_attributes(o)?));
            }
            ("include" | "dependency" | "generate", serde_json::Value::Object(labelled)) => {
                for (label, inner) in labelled {
                    let serde_json::Value::Object(inner) = inner else {
                        return Err(format!("{key}.{label} must be an object"));
                    };
                    hcl_text.push_str(&format!("{key} {} {{\n{}}}\n", json_string(label), json_attributes(inner)?));
                }
            }
            _ => hcl_text.push_str(&format!("{key} = {}\n", json_expression(value)?)),
        }
    }
    hcl::parse(&hcl_text).map_err(|e| e.to_string())
}

fn json_attributes(object: &serde_json::Map<String, serde_json::Value>) -> Result<String, String> {
    let mut out = String::new();
    for (k, v) in object {
        if !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(format!("{k:?} is not a valid attribute name"));
        }
        out.push_str(&format!("  {k} = {}\n", json_expression(v)?));
    }
    Ok(out)
}

fn json_expression(value: &serde_json::Value) -> Result<String, String> {
    Ok(match value {
        serde_json::Value::String(s) => json_string(s),
        serde_json::Value::Array(items) => {
            format!("[{}]", items.iter().map(json_expression).collect::<Result<Vec<_>, _>>()?.join(", "))
        }
        serde_json::Value::Object(o) => {
            let fields = o
                .iter()
                .map(|(k, v)| Ok(format!("{} = {}", json_string(k), json_expression(v)?)))
                .collect::<Result<Vec<_>, String>>()?;
            format!("{{{}}}", fields.join(", "))
        }
        other => other.to_string(),
    })
}

/// A JSON string as an HCL quoted template: literal text escaped, `${...}` interpolations kept as written.
fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&escape_literal(&rest[..start]));
        let end = interpolation_end(&rest[start + 2..]).map_or(rest.len(), |e| start + 2 + e + 1);
        out.push_str(&rest[start..end]);
        rest = &rest[end..];
    }
    out.push_str(&escape_literal(rest));
    out.push('"');
    out
}

fn escape_literal(text: &str) -> String {
    let quoted = serde_json::Value::String(text.to_owned()).to_string();
    quoted[1..quoted.len() - 1].to_owned()
}

/// The index of the `}` closing an interpolation whose body starts at `body`, skipping nested braces and strings.
fn interpolation_end(body: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        match (in_string, c) {
            (true, _) if escaped => escaped = false,
            (true, '\\') => escaped = true,
            (true, '"') => in_string = false,
            (false, '"') => in_string = true,
            (false, '{') => depth += 1,
            (false, '}') if depth == 0 => return Some(i),
            (false, '}') => depth -= 1,
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_the_parts_detection_needs() {
        let parsed = parse_config(
            "dev/app/terragrunt.hcl",
            r#"
            include "root" { path = find_in_parent_folders("root.hcl") }
            locals { env = read_terragrunt_config("env.hcl") }
            terraform { source = "../../modules//app" }
            dependency "vpc" {
              config_path = "../vpc"
              mock_outputs = { x = file("mock.json") }
            }
            dependencies { paths = ["../db"] }
            generate "p" { contents = file("tpl.tf") }
            inputs = { a = 1 }
            "#,
        )
        .expect("parses");
        assert_eq!(parsed.includes.len(), 1);
        assert_eq!(parsed.includes[0].name, "root");
        assert_eq!(parsed.locals.len(), 1);
        assert_eq!(parsed.dependency_paths.len(), 2);
        assert!(parsed.terraform_source.is_some());
        assert_eq!(parsed.nested_reads.len(), 2, "mock_outputs and generate.contents");
        assert_eq!(parsed.top_level.len(), 1);
        assert!(parsed.functions.contains("find_in_parent_folders"));
        assert!(!parsed.references_include);
        let exposed =
            parse_config("x/terragrunt.hcl", "terraform { source = include.env.locals.url }").expect("parses");
        assert!(exposed.references_include);
    }

    #[test]
    fn json_flavour() {
        let parsed = parse_config(
            "a/terragrunt.hcl.json",
            r#"{"include": {"root": {"path": "${find_in_parent_folders(\"root.hcl\")}"}},
                "locals": {"x": "${file(\"y.txt\")}"}, "dependency": {"vpc": {"config_path": "../vpc"}},
                "inputs": {"a": [1, "b"]}}"#,
        )
        .expect("parses");
        assert_eq!(parsed.includes.len(), 1);
        assert_eq!(parsed.locals.len(), 1);
        assert_eq!(parsed.dependency_paths.len(), 1);
        assert!(parsed.functions.contains("file"));
    }

    #[test]
    fn lowered_templates_evaluate_like_the_originals() {
        use hcl::eval::{Context, Evaluate};
        let mut ctx = Context::new();
        ctx.declare_var("x", "X");
        ctx.declare_var("n", 7);
        ctx.declare_var("list", vec!["a", "b"]);
        ctx.declare_func(CONCAT, crate::functions::definition(CONCAT).expect("concat"));
        let cases = [
            r#""plain ${x} and ${n}""#,
            r#""${x}""#,
            r#""esc \"q\" \\ \n $${x} %%{y}""#,
            r#""nested ${"in-${x}"}-out""#,
            r#"["a-${x}", { k = "v-${n}" }]"#,
            r#"true ? "t-${x}" : "f""#,
            r#"[for i in list : "${i}-${x}"]"#,
            r#""%{ if n > 1 }big%{ else }small%{ endif }""#,
            r#""strip ${~ x ~} done""#,
        ];
        for case in cases {
            let expr: Expression = case.parse().expect(case);
            let original = expr.evaluate(&ctx).expect(case);
            let lowered = lower_templates(&expr).evaluate(&ctx).expect(case);
            assert_eq!(lowered, original, "{case}");
        }
    }

    #[test]
    fn syntax_errors_are_errors() {
        assert!(parse_config("x/terragrunt.hcl", "locals {").is_err());
        assert!(parse_config("x/terragrunt.hcl.json", "{").is_err());
    }
}
