//! Static evaluation of terragrunt configs: which files does a unit read?
//!
//! Expressions are evaluated with `hcl-rs`'s evaluator. Terragrunt's functions need to know where they are
//! evaluated (the unit's directory, the included file, ...), but `hcl-rs` functions are plain `fn` pointers, so that
//! context lives in a thread-local [`State`] that [`Evaluator::evaluate_unit`] sets up for the duration of one
//! unit. Each worker thread evaluates its own units; shared caches (parsed files, `read_terragrunt_config` results)
//! sit behind mutexes in [`Shared`].
//!
//! Nothing is ever executed: `run_cmd` is a function that always fails. An expression that can't be evaluated
//! only matters if it decides a read; then the read is recorded as [`Unresolved`] with whatever path prefix is
//! known, and detection fails closed on it.

use crate::functions;
use crate::parsed::{parse_config, walk, ParsedConfig, CONCAT, READ_FUNCTIONS};
use crate::reads::{Reads, Unresolved};
use crate::snapshot::{self, Snapshot};
use hcl::eval::{Context, Evaluate};
use hcl::expr::Expression;
use hcl::{Map, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How deep includes and `read_terragrunt_config` may nest before evaluation gives up (cycles end here).
const MAX_NESTING: usize = 16;

/// Caches shared by every unit evaluated against one snapshot.
pub struct Shared {
    /// The tree being evaluated.
    pub snapshot: Arc<Snapshot>,
    parsed: Mutex<HashMap<String, Result<Arc<ParsedConfig>, String>>>,
    read_configs: Mutex<HashMap<String, Arc<ReadConfigResult>>>,
    includes: Mutex<HashMap<(String, String), Arc<ReadConfigResult>>>,
    parent_searches: Mutex<HashMap<(String, String), Arc<ParentSearch>>>,
}

/// The outcome of `find_in_parent_folders(name)` from one directory, shared by every unit there.
struct ParentSearch {
    found: Option<String>,
    /// Every candidate probed: adding or deleting a file at any of them changes which one is found.
    probes: Arc<Reads>,
}

/// The result of evaluating a shared file: `read_terragrunt_config(path)` for every unit, or an include for every
/// unit of one directory.
struct ReadConfigResult {
    value: Result<Value, String>,
    reads: Arc<Reads>,
}

/// Where the expression being evaluated sits.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    /// `get_terragrunt_dir()`: the unit, or the file read by `read_terragrunt_config` (repo-relative).
    pub terragrunt_dir: String,
    /// `get_original_terragrunt_dir()`: the unit evaluation started from.
    pub original_dir: String,
    /// The directory of the included file being evaluated, or of the unit's first include.
    pub include_dir: Option<String>,
    /// The unit's includes, by name, for `path_relative_to_include("name")`.
    pub includes: Vec<(String, String)>,
}

/// The evaluation state of the current thread.
pub(crate) struct State {
    pub shared: Arc<Shared>,
    pub frames: Vec<Frame>,
    pub reads: Reads,
    /// Set when the evaluation observed the unit's own directory (not just its parent), so an included file's
    /// result can't be reused for the unit's siblings.
    pub unit_sensitive: bool,
}

impl State {
    /// True while evaluating in the unit's own context (the unit or a file it includes).
    pub fn in_unit_context(&self) -> bool {
        self.frames.last().is_some_and(|f| f.terragrunt_dir == f.original_dir)
    }

    /// Records a warning. Warnings name the unit, so they make the current result unit-specific.
    pub fn warn(&mut self, message: String) {
        self.unit_sensitive = true;
        self.reads.warnings.push(message);
    }
}

/// Notes that the value being computed depends on the unit's own directory.
pub(crate) fn observe_unit_dir(always: bool) {
    let _ = with_state(|s| {
        if always || s.in_unit_context() {
            s.unit_sensitive = true;
        }
    });
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

/// Runs `f` on this thread's evaluation state. Only called from functions invoked during an evaluation.
pub(crate) fn with_state<R>(f: impl FnOnce(&mut State) -> R) -> Result<R, String> {
    STATE.with(|cell| match cell.borrow_mut().as_mut() {
        Some(state) => Ok(f(state)),
        None => Err("terragrunt function called outside an evaluation".to_owned()),
    })
}

/// The current frame (a copy; frames are small).
pub(crate) fn current_frame() -> Result<Frame, String> {
    with_state(|s| s.frames.last().cloned())?.ok_or_else(|| "no evaluation frame".to_owned())
}

/// Evaluates units of one snapshot.
#[derive(Clone)]
pub struct Evaluator {
    shared: Arc<Shared>,
}

/// Which role a config plays, which decides what in it counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The unit's own `terragrunt.hcl`.
    Unit,
    /// A file included by the unit (evaluated in the unit's context).
    Include,
    /// A file read with `read_terragrunt_config` (evaluated in its own directory).
    ReadConfig,
}

impl Evaluator {
    /// An evaluator over `snapshot`.
    pub fn new(snapshot: Arc<Snapshot>) -> Evaluator {
        Evaluator {
            shared: Arc::new(Shared {
                snapshot,
                parsed: Mutex::new(HashMap::new()),
                read_configs: Mutex::new(HashMap::new()),
                includes: Mutex::new(HashMap::new()),
                parent_searches: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The snapshot evaluated.
    pub fn snapshot(&self) -> &Snapshot {
        &self.shared.snapshot
    }

    /// Everything the unit at `unit_dir` (config file `config_file`) reads, and its dependencies.
    pub fn evaluate_unit(&self, unit_dir: &str, config_file: &str) -> Reads {
        let frame = Frame {
            terragrunt_dir: unit_dir.to_owned(),
            original_dir: unit_dir.to_owned(),
            include_dir: None,
            includes: Vec::new(),
        };
        STATE.with(|cell| {
            *cell.borrow_mut() = Some(State {
                shared: self.shared.clone(),
                frames: vec![frame],
                reads: Reads::default(),
                unit_sensitive: false,
            })
        });
        record_read(config_file);
        match parsed(&self.shared, config_file) {
            Ok(config) => {
                evaluate_config(&config, Role::Unit);
            }
            Err(message) => {
                // Its dependency edges still matter for the order: recover those written as plain literals, and
                // order it conservatively if there may be others.
                let text = self
                    .shared
                    .snapshot
                    .read(config_file)
                    .ok()
                    .flatten()
                    .map(|b| String::from_utf8_lossy(&b).into_owned());
                let (literal, complete) =
                    text.as_deref().map_or((Vec::new(), false), crate::parsed::literal_dependency_paths);
                let _ = with_state(|s| {
                    s.warn(format!("{config_file}: cannot be parsed: {message}"));
                    s.reads
                        .unresolved
                        .push(Unresolved { prefix: None, detail: format!("{config_file} cannot be parsed") });
                    for path in &literal {
                        let absolute = snapshot::join(&snapshot::to_absolute(unit_dir), path);
                        if let Some(dir) = snapshot::to_repo_relative(&absolute) {
                            s.reads.dependencies.insert(dir);
                        }
                    }
                    if !complete {
                        s.reads.dependencies_unknown = true;
                    }
                });
            }
        }
        STATE.with(|cell| cell.borrow_mut().take()).map(|s| s.reads).unwrap_or_default()
    }
}

/// Parses `path` once per snapshot.
fn parsed(shared: &Shared, path: &str) -> Result<Arc<ParsedConfig>, String> {
    if let Some(hit) = lock(&shared.parsed).get(path).cloned() {
        return hit;
    }
    let result = match shared.snapshot.read(path) {
        Ok(Some(bytes)) => match String::from_utf8(bytes) {
            Ok(text) => parse_config(path, &text),
            Err(_) => Err("not valid UTF-8".to_owned()),
        },
        Ok(None) => Err("no such file".to_owned()),
        Err(e) => Err(e.to_string()),
    }
    .map(Arc::new);
    lock(&shared.parsed).insert(path.to_owned(), result.clone());
    result
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves only a cache behind; its contents are still valid.
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Records that the current unit reads (or probes) `path` (repo-relative), and the real path behind symlinks.
pub(crate) fn record_read(path: &str) {
    let _ = with_state(|s| {
        s.reads.files.insert(path.to_owned());
        if !s.shared.snapshot.has_symlinks() {
            return;
        }
        match s.shared.snapshot.resolve(path) {
            Ok(real) if real != path => {
                s.reads.files.insert(real);
            }
            Ok(_) => {}
            Err(e) => {
                let message = format!("{}: {e}", frame_unit(s));
                s.warn(message);
            }
        }
    });
}

/// Looks for `name` in `start` and each folder above it, up to the root; records every probe as a read.
/// Returns the repo-relative path found, if any. Cached per `(start, name)`.
pub(crate) fn search_parent_folders(start: &str, name: &str) -> Result<Option<String>, String> {
    let shared = with_state(|s| s.shared.clone())?;
    let key = (start.to_owned(), name.to_owned());
    let cached = lock(&shared.parent_searches).get(&key).cloned();
    let search = match cached {
        Some(hit) => hit,
        None => {
            let mut probes = Reads::default();
            let mut found = None;
            let mut dir = Some(start);
            while let Some(current) = dir {
                let candidate = if current.is_empty() { name.to_owned() } else { format!("{current}/{name}") };
                let Some(candidate) = snapshot::to_repo_relative(&snapshot::to_absolute(&candidate)) else { break };
                match shared.snapshot.resolve(&candidate) {
                    Ok(real) if real != candidate => {
                        probes.files.insert(real);
                    }
                    Ok(_) => {}
                    Err(e) => probes.warnings.push(e.to_string()),
                }
                probes.files.insert(candidate.clone());
                // Terragrunt checks that the path exists, file or folder: `find_in_parent_folders("parent")` can name
                // a folder whose terragrunt.hcl is then included.
                if shared.snapshot.exists(&candidate) {
                    found = Some(candidate);
                    break;
                }
                dir = (!current.is_empty()).then(|| snapshot::parent(current));
            }
            let search = Arc::new(ParentSearch { found, probes: Arc::new(probes) });
            lock(&shared.parent_searches).insert(key, search.clone());
            search
        }
    };
    with_state(|s| s.reads.merge(&search.probes))?;
    Ok(search.found.clone())
}

fn frame_unit(state: &State) -> String {
    state.frames.first().map(|f| f.original_dir.clone()).unwrap_or_default()
}

/// Turns a path argument into a repo-relative path, resolving relative paths from the terragrunt dir.
/// A path outside the repo is an error (and a warning): it can't be a changed file and is never read.
pub(crate) fn repo_path(path: &str) -> Result<String, String> {
    let frame = current_frame()?;
    if !path.starts_with('/') {
        observe_unit_dir(false);
    }
    let absolute = snapshot::join(&snapshot::to_absolute(&frame.terragrunt_dir), path);
    snapshot::to_repo_relative(&absolute).ok_or_else(|| {
        let message = format!("{}: path {path:?} points outside the repository; not read", frame.original_dir);
        let _ = with_state(|s| s.warn(message.clone()));
        message
    })
}

/// Evaluates `read_terragrunt_config` of the repo-relative `path` (cached per path).
pub(crate) fn read_config(path: &str) -> Result<Value, String> {
    let shared = with_state(|s| s.shared.clone())?;
    let cached = lock(&shared.read_configs).get(path).cloned();
    let result = match cached {
        Some(hit) => hit,
        None => {
            let config = parsed(&shared, path);
            let uses_original_dir = config.as_ref().is_ok_and(|c| c.functions.contains("get_original_terragrunt_dir"));
            let result = Arc::new(evaluate_read_config(path, config)?);
            if !uses_original_dir {
                lock(&shared.read_configs).insert(path.to_owned(), result.clone());
            }
            result
        }
    };
    with_state(|s| s.reads.merge(&result.reads))?;
    result.value.clone()
}

fn evaluate_read_config(path: &str, config: Result<Arc<ParsedConfig>, String>) -> Result<ReadConfigResult, String> {
    let config = config.map_err(|e| format!("{path}: {e}"))?;
    let saved = with_state(|s| {
        if s.frames.len() >= MAX_NESTING {
            return Err(format!("{path}: configs nest more than {MAX_NESTING} deep (a cycle?)"));
        }
        let original_dir = s.frames.last().map(|f| f.original_dir.clone()).unwrap_or_default();
        s.frames.push(Frame {
            terragrunt_dir: snapshot::parent(path).to_owned(),
            original_dir,
            include_dir: None,
            includes: Vec::new(),
        });
        Ok(std::mem::take(&mut s.reads))
    })??;
    let value = evaluate_config(&config, Role::ReadConfig);
    let reads = with_state(|s| {
        s.frames.pop();
        std::mem::replace(&mut s.reads, saved)
    })?;
    Ok(ReadConfigResult { value: Ok(value), reads: Arc::new(reads) })
}

/// An expression evaluator for one config: its functions, and the `local`/`include` variables so far.
struct Scope {
    ctx: Context<'static>,
    locals: Map<String, Value>,
    include: Map<String, Value>,
    rewrite_try: bool,
}

impl Scope {
    fn new(config: &ParsedConfig) -> Scope {
        let mut ctx = Context::new();
        for name in &config.functions {
            if let Some(def) = functions::definition(name) {
                ctx.declare_func(name.as_str(), def);
            }
        }
        let rewrite_try = config.functions.contains("try") || config.functions.contains("can");
        let mut scope = Scope { ctx, locals: Map::new(), include: Map::new(), rewrite_try };
        scope.sync_vars();
        scope
    }

    fn sync_vars(&mut self) {
        self.ctx.declare_var("local", Value::Object(self.locals.clone()));
        self.ctx.declare_var("include", Value::Object(self.include.clone()));
    }

    fn eval(&self, expr: &Expression) -> Result<Value, String> {
        if self.rewrite_try {
            let rewritten = functions::resolve_try_and_can(expr, &self.ctx);
            return rewritten.evaluate(&self.ctx).map_err(|e| e.to_string());
        }
        expr.evaluate(&self.ctx).map_err(|e| e.to_string())
    }

    fn eval_string(&self, expr: &Expression) -> Result<String, String> {
        match self.eval(expr)? {
            Value::String(s) => Ok(s),
            other => Err(format!("expected a string, got {other}")),
        }
    }

    /// Evaluates locals until no more resolve; returns the ones that failed.
    fn resolve_locals<'c>(&mut self, mut pending: Vec<&'c (String, Expression)>) -> Vec<&'c (String, Expression)> {
        loop {
            let before = pending.len();
            // Variables are re-declared once per pass, not per local: cloning the locals is the costly part, and a
            // local that needs a sibling from the same pass simply resolves in the next one.
            let mut resolved = Vec::new();
            pending.retain(|(name, expr)| match self.eval(expr) {
                Ok(value) => {
                    resolved.push((name.clone(), value));
                    false
                }
                Err(_) => true,
            });
            self.locals.extend(resolved);
            if pending.len() < before {
                self.sync_vars();
            }
            if pending.len() == before || pending.is_empty() {
                return pending;
            }
        }
    }

    /// A failed expression may have decided reads: find its read calls and record what can be known of each.
    fn fail_closed(&self, expr: &Expression) {
        walk(expr, &mut |e| {
            let Expression::FuncCall(call) = e else {
                return;
            };
            let name = call.name.name.as_str();
            if !READ_FUNCTIONS.contains(&name) {
                return;
            }
            match call.args.first().map(|a| self.eval(a)) {
                // The argument is known: evaluating the call records the read, whatever the call then returns.
                Some(Ok(_)) => {
                    let _ = self.eval(e);
                }
                Some(Err(arg_why)) => self.unresolved(call.args.first(), &format!("{name}(...): {arg_why}")),
                None => {}
            }
        });
    }

    /// Records an unresolved read whose path is `expr`, with the longest literal prefix that can be evaluated.
    fn unresolved(&self, expr: Option<&Expression>, detail: &str) {
        let prefix = expr.and_then(|e| self.known_prefix(e));
        // No warning here: an unresolved read matters only when it selects the unit, and detection says so then.
        let _ = with_state(|s| s.reads.unresolved.push(Unresolved { prefix, detail: detail.to_owned() }));
    }

    /// The repo-relative prefix shared by every value `expr` could take, when a template starts with one.
    fn known_prefix(&self, expr: &Expression) -> Option<String> {
        let mut known = String::new();
        for part in lowered_template_parts(expr)? {
            match part {
                Expression::String(text) => known.push_str(text),
                other => match self.eval(other) {
                    Ok(Value::String(s)) => known.push_str(&s),
                    Ok(Value::Number(n)) => known.push_str(&n.to_string()),
                    _ => break,
                },
            }
        }
        if known.is_empty() {
            return None;
        }
        // Keep only whole directories: "src/foo-" can only say "src/".
        let directory = match known.rfind('/') {
            Some(i) => &known[..=i],
            None => "",
        };
        let frame = current_frame().ok()?;
        if !directory.starts_with('/') {
            observe_unit_dir(false);
        }
        let absolute = snapshot::join(&snapshot::to_absolute(&frame.terragrunt_dir), directory);
        let relative = snapshot::to_repo_relative(&absolute)?;
        Some(if relative.is_empty() { String::new() } else { format!("{relative}/") })
    }
}

/// The parts of a template lowered by [`crate::parsed::lower_templates`]: literal strings and interpolated
/// expressions, in order. `None` for anything else (including templates with directives, which stay unknown).
fn lowered_template_parts(expr: &Expression) -> Option<&[Expression]> {
    match expr {
        Expression::FuncCall(call) if call.name.name.as_str() == CONCAT => Some(&call.args),
        _ => None,
    }
}

/// Evaluates one config in the current frame; returns what `read_terragrunt_config` or an include exposes.
fn evaluate_config(config: &ParsedConfig, role: Role) -> Value {
    let mut scope = Scope::new(config);
    let mut failed_locals = scope.resolve_locals(config.locals.iter().collect());

    if role != Role::ReadConfig && !config.includes.is_empty() {
        evaluate_includes(config, &mut scope);
        failed_locals = scope.resolve_locals(failed_locals);
    }
    for (_, expr) in &failed_locals {
        scope.fail_closed(expr);
    }

    let mut exposed = Map::new();
    exposed.insert("locals".to_owned(), Value::Object(scope.locals.clone()));
    for ((key, expr), reads) in config.top_level.iter().zip(&config.top_level_reads) {
        // A unit's own `inputs` and friends are exposed to nobody: evaluate them only for their reads.
        if role == Role::Unit && !reads {
            continue;
        }
        match scope.eval(expr) {
            Ok(value) => {
                exposed.insert(key.clone(), value);
            }
            Err(_) => scope.fail_closed(expr),
        }
    }
    for expr in &config.nested_reads {
        if scope.eval(expr).is_err() {
            scope.fail_closed(expr);
        }
    }
    if role != Role::ReadConfig {
        if let Some(source) = &config.terraform_source {
            let _ = with_state(|s| s.reads.has_source = true);
            evaluate_source(&scope, source);
        }
        for expr in &config.var_files {
            evaluate_var_files(&scope, expr);
        }
        for expr in &config.dependency_paths {
            evaluate_dependency_paths(&scope, expr);
        }
    }
    Value::Object(exposed)
}

fn evaluate_includes(config: &ParsedConfig, scope: &mut Scope) {
    let Ok(shared) = with_state(|s| s.shared.clone()) else {
        return;
    };
    for include in &config.includes {
        let path = match scope.eval_string(&include.path).and_then(|p| repo_path(&p)) {
            Ok(path) => path,
            Err(why) => {
                scope.unresolved(Some(&include.path), &format!("include {:?} path: {why}", include.name));
                continue;
            }
        };
        record_read(&path);
        let _ = with_state(|s| s.reads.includes.insert(path.clone()));
        let include_dir = snapshot::parent(&path).to_owned();
        let nesting = with_state(|s| {
            let mut frame = s.frames.last().cloned()?;
            if s.frames.len() >= MAX_NESTING {
                return None;
            }
            frame.include_dir = Some(include_dir.clone());
            s.frames.push(frame);
            Some(())
        });
        if !matches!(nesting, Ok(Some(()))) {
            scope.unresolved(None, &format!("include {path}: includes nest more than {MAX_NESTING} deep"));
            continue;
        }
        let exposed = evaluate_include(&shared, &path, scope, config.references_include);
        let _ = with_state(|s| {
            s.frames.pop();
            if let Some(frame) = s.frames.last_mut() {
                frame.includes.push((include.name.clone(), include_dir.clone()));
                frame.include_dir.get_or_insert(include_dir.clone());
            }
        });
        if config.references_include {
            scope.include.insert(include.name.clone(), exposed);
        }
    }
    if config.references_include {
        scope.sync_vars();
    }
}

/// Evaluates an included file in the current frame, reusing the result of a sibling unit (same parent
/// directory) when that evaluation never looked at the unit's own directory.
fn evaluate_include(shared: &Shared, path: &str, scope: &Scope, wants_value: bool) -> Value {
    let Ok(Some(unit_dir)) = with_state(|s| s.frames.first().map(|f| f.terragrunt_dir.clone())) else {
        return Value::Null;
    };
    let key = (path.to_owned(), snapshot::parent(&unit_dir).to_owned());
    if let Some(hit) = lock(&shared.includes).get(&key).cloned() {
        let _ = with_state(|s| s.reads.merge(&hit.reads));
        return if wants_value { hit.value.clone().unwrap_or(Value::Null) } else { Value::Null };
    }
    let Ok((saved_reads, saved_sensitive)) =
        with_state(|s| (std::mem::take(&mut s.reads), std::mem::replace(&mut s.unit_sensitive, false)))
    else {
        return Value::Null;
    };
    let exposed = match parsed(shared, path) {
        Ok(included) => evaluate_config(&included, Role::Include),
        Err(why) => {
            scope.unresolved(None, &format!("included {path} cannot be parsed: {why}"));
            Value::Null
        }
    };
    let Ok((reads, sensitive)) = with_state(|s| {
        let reads = Arc::new(std::mem::replace(&mut s.reads, saved_reads));
        let sensitive = s.unit_sensitive;
        s.unit_sensitive |= saved_sensitive;
        s.reads.merge(&reads);
        (reads, sensitive)
    }) else {
        return exposed;
    };
    if !sensitive {
        lock(&shared.includes).insert(key, Arc::new(ReadConfigResult { value: Ok(exposed.clone()), reads }));
    }
    exposed
}

/// A local `terraform { source }` makes every module file under it a read.
fn evaluate_source(scope: &Scope, source: &Expression) {
    let value = match scope.eval_string(source) {
        Ok(value) => value,
        Err(why) => {
            // Only a local source is a read; a template that starts like a URL can't be one.
            let literal_text: String = lowered_template_parts(source)
                .unwrap_or_default()
                .iter()
                .filter_map(|part| if let Expression::String(text) = part { Some(text.as_str()) } else { None })
                .collect();
            let looks_remote = literal_text.contains("::") || literal_text.contains("://");
            if !looks_remote {
                scope.unresolved(Some(source), &format!("terraform.source: {why}"));
                let _ = with_state(|s| {
                    let problem = format!("{}: terraform.source can't be worked out statically ({why})", frame_unit(s));
                    s.reads.source_problems.push(problem);
                });
            }
            return;
        }
    };
    if value.contains("::") || value.contains("://") || !(value.starts_with('.') || value.starts_with('/')) {
        return; // git::, tfr://, registry and other remote sources
    }
    let local = value.split('?').next().unwrap_or_default();
    // `../modules//vpc` copies the whole `../modules` tree; everything in it is read.
    let root = local.split_once("//").map_or(local, |(root, _)| root);
    match repo_path(root) {
        Ok(dir) => {
            let _ = with_state(|s| s.reads.source_dirs.insert(dir));
        }
        Err(_) => {
            let _ = with_state(|s| {
                let problem = format!("{}: terraform.source {value:?} leaves the repository", frame_unit(s));
                s.reads.source_problems.push(problem);
            });
        }
    }
}

/// `required_var_files`/`optional_var_files`: Terraform reads each, so each is a read whether or not it exists yet
/// (adding an optional one changes the plan). Relative paths resolve from the terragrunt dir, as terragrunt does.
fn evaluate_var_files(scope: &Scope, expr: &Expression) {
    let files = match scope.eval(expr) {
        Ok(Value::Array(items)) => items,
        Ok(Value::String(one)) => vec![Value::String(one)],
        Ok(_) | Err(_) => {
            scope.unresolved(Some(expr), "extra_arguments var files can't be worked out statically");
            return;
        }
    };
    for file in files {
        match file.as_str().map(repo_path) {
            Some(Ok(path)) => record_read(&path),
            Some(Err(_)) => {} // outside the repo: warned, never a changed file
            None => scope.unresolved(Some(expr), "an extra_arguments var file is not a string"),
        }
    }
}

fn evaluate_dependency_paths(scope: &Scope, expr: &Expression) {
    let paths = match scope.eval(expr) {
        Ok(Value::String(p)) => vec![p],
        Ok(Value::Array(items)) => items.into_iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        Ok(other) => {
            let _ = with_state(|s| {
                let message = format!("{}: dependency path is {other}, not a path", frame_unit(s));
                s.warn(message)
            });
            return;
        }
        Err(why) => {
            let _ = with_state(|s| {
                let unit = frame_unit(s);
                s.reads.dependencies_unknown = true;
                s.warn(format!("{unit}: cannot resolve a dependency path ({why}); its dependents may be missed"))
            });
            return;
        }
    };
    if paths.iter().any(|p| !p.starts_with('/')) {
        observe_unit_dir(true);
    }
    for path in paths {
        // Dependency paths resolve from the unit, even when written in an included file.
        let resolved = current_frame().ok().and_then(|frame| {
            let absolute = snapshot::join(&snapshot::to_absolute(&frame.original_dir), &path);
            snapshot::to_repo_relative(&absolute)
        });
        let _ = with_state(|s| match resolved {
            Some(dir) => {
                s.reads.dependencies.insert(dir);
            }
            None => {
                let unit = frame_unit(s);
                s.warn(format!("{unit}: dependency {path:?} points outside the repository"))
            }
        });
    }
}
