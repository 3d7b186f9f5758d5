//! Syntax rules for the untrusted strings in a request: refs, unit paths, repos and free-text fields.
//!
//! These are pure predicates with no knowledge of the policy. Each returns `Err(why)` with a short,
//! human-readable explanation that never echoes the input itself.

/// Longest accepted ref, in bytes.
pub const MAX_REF_BYTES: usize = 255;
/// Longest accepted unit path, in bytes.
pub const MAX_PATH_BYTES: usize = 512;
/// Most segments in a unit path.
pub const MAX_PATH_SEGMENTS: usize = 32;
/// Longest accepted repo URL, in bytes.
pub const MAX_REPO_BYTES: usize = 512;
/// Longest accepted actor login, in characters (before an optional `[bot]`): GitHub logins are at most 39, and
/// Enterprise Managed Users add `_<shortcode>`.
pub const MAX_ACTOR_CHARS: usize = 64;

/// Checks `name` against the rules of `git check-ref-format --branch`.
pub fn check_branch_ref(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("is empty");
    }
    if name.len() > MAX_REF_BYTES {
        return Err("is longer than 255 bytes");
    }
    if name == "@" {
        return Err("is the lone '@'");
    }
    if name.starts_with('-') {
        return Err("starts with '-'");
    }
    if name.starts_with('/') || name.ends_with('/') {
        return Err("starts or ends with '/'");
    }
    if name.ends_with('.') {
        return Err("ends with '.'");
    }
    if name.contains("..") {
        return Err("contains '..'");
    }
    if name.contains("@{") {
        return Err("contains '@{'");
    }
    if name.contains("//") {
        return Err("contains '//'");
    }
    if crate::text::check_inert(name).is_err() {
        return Err("contains a control, format (bidi, zero-width), separator, private-use or unassigned character");
    }
    if let Some(c) = name.chars().find(|&c| c.is_ascii_control() || " ~^:?*[\\".contains(c)) {
        return Err(if c.is_ascii_control() {
            "contains a control character"
        } else {
            "contains one of: space ~ ^ : ? * [ \\"
        });
    }
    for component in name.split('/') {
        if component.starts_with('.') {
            return Err("has a component starting with '.'");
        }
        if component.ends_with(".lock") {
            return Err("has a component ending with '.lock'");
        }
    }
    Ok(())
}

/// True for a full 40-hex (SHA-1) or 64-hex (SHA-256) lowercase commit id.
pub fn is_full_commit_sha(name: &str) -> bool {
    matches!(name.len(), 40 | 64) && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// True for a commit id or a prefix of one: 7 to 64 lowercase hex digits (how images are tagged by commit).
pub fn is_commit_sha_prefix(name: &str) -> bool {
    (7..=64).contains(&name.len()) && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Checks a ref: a valid branch name or a full commit SHA.
pub fn check_ref(name: &str) -> Result<(), &'static str> {
    if is_full_commit_sha(name) {
        return Ok(());
    }
    check_branch_ref(name)
}

/// Checks a repo-relative unit path: `/`-separated safe segments, no traversal, no absolute paths.
pub fn check_unit_path(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("is empty");
    }
    if path.len() > MAX_PATH_BYTES {
        return Err("is longer than 512 bytes");
    }
    if path.starts_with('/') {
        return Err("is absolute");
    }
    if path.ends_with('/') {
        return Err("ends with '/'");
    }
    let mut segments = 0;
    for segment in path.split('/') {
        segments += 1;
        if segments > MAX_PATH_SEGMENTS {
            return Err("has more than 32 segments");
        }
        // Units a terragrunt stack generates live under `<stack>/.terragrunt-stack/`: that one dot-folder, never
        // first (it is not an account), is a name, not traversal.
        if segment == GENERATED_STACK_DIR && segments > 1 {
            continue;
        }
        check_path_segment(segment)?;
    }
    Ok(())
}

/// The folder `terragrunt stack generate` writes units into.
pub const GENERATED_STACK_DIR: &str = ".terragrunt-stack";

/// Checks one path segment: `^[A-Za-z0-9_][A-Za-z0-9._-]*$`, which also excludes `.` and `..`.
pub fn check_path_segment(segment: &str) -> Result<(), &'static str> {
    if segment == "." || segment == ".." {
        return Err("has a '.' or '..' segment (traversal)");
    }
    let mut bytes = segment.bytes();
    match bytes.next() {
        None => Err("has an empty segment ('//')"),
        Some(first) if !(first.is_ascii_alphanumeric() || first == b'_') => {
            Err("has a segment that does not start with a letter, digit or '_'")
        }
        Some(_) if bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) => Ok(()),
        Some(_) => Err("has a segment with a character outside [A-Za-z0-9._-]"),
    }
}

/// Checks a repo string before it is matched against the allow-list.
///
/// The allow-list is the real control; these checks stop inputs that a careless regex could let through and that
/// git would treat as options, remote helpers or credentials.
pub fn check_repo_shape(repo: &str) -> Result<(), &'static str> {
    if repo.is_empty() {
        return Err("is empty");
    }
    if repo.len() > MAX_REPO_BYTES {
        return Err("is longer than 512 bytes");
    }
    if !repo.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("contains whitespace, a control character or a non-ASCII character");
    }
    if repo.contains(['?', '#']) {
        return Err("contains '?' or '#'");
    }
    if repo.starts_with('-') {
        return Err("starts with '-'");
    }
    if repo.contains("::") {
        return Err("uses a git remote-helper transport ('::')");
    }
    if let Some((scheme, rest)) = repo.split_once("://") {
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        // `ssh://git@host/...` is how SSH remotes are written; any other user info is a credential or a trick.
        let ssh_git_user = scheme == "ssh" && authority.strip_prefix("git@").is_some_and(|host| !host.contains('@'));
        if authority.contains('@') && !ssh_git_user {
            return Err("carries user info ('user@') in the URL");
        }
        if !path_is_clean(path) {
            return Err("has an empty, '.' or '..' path segment");
        }
    } else if let Some((_, path)) = scp_like(repo) {
        if !path_is_clean(path) {
            return Err("has an empty, '.' or '..' path segment");
        }
    }
    Ok(())
}

/// True when every `/`-separated segment of a URL path is a real name: no `//`, `.` or `..`, which a server would
/// normalise to another repository than the text the allow-list saw. (A trailing `/` is an empty segment too.)
fn path_is_clean(path: &str) -> bool {
    path.is_empty() || path.split('/').all(|segment| !segment.is_empty() && segment != "." && segment != "..")
}

/// The host and path of an scp-like SSH remote, `user@host:path`, as git reads it (no `://`, a `:` before any `/`).
fn scp_like(repo: &str) -> Option<(&str, &str)> {
    if repo.contains("://") {
        return None;
    }
    let (authority, path) = repo.split_once(':')?;
    if authority.contains('/') {
        return None;
    }
    Some((authority, path))
}

/// The one normalisation the allow-list applies: the two ways git names a repository over SSH, `git@HOST:PATH`
/// and `ssh://git@HOST/PATH`, are the repository `https://HOST/PATH`. Nothing else changes: no case folding, no
/// `.git` stripping, no other user, no port. `None` when `repo` is not one of those two forms.
pub fn ssh_to_https(repo: &str) -> Option<String> {
    let (host, path) = match repo.strip_prefix("ssh://") {
        Some(rest) => rest.strip_prefix("git@")?.split_once('/')?,
        None => {
            let (authority, path) = scp_like(repo)?;
            (authority.strip_prefix("git@")?, path)
        }
    };
    let host_ok = !host.is_empty()
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        && !host.starts_with(['.', '-']);
    let path_ok = !path.is_empty() && !path.starts_with(['/', '-']) && path_is_clean(path);
    (host_ok && path_ok).then(|| format!("https://{host}/{path}"))
}

/// The one spelling of a repo that state about it (the deployment ledger, the apply lock, local terraform state) is
/// keyed by: its HTTPS form (an SSH form becomes `https://HOST/PATH`, `http://` becomes `https://`), without a
/// trailing `/` or `.git`, in lower case. A policy may admit several spellings of one repo (a regex matches `x` and
/// `x.git`; GitHub ignores case): keyed by spelling, each would get a ledger and a lock of its own, with nothing
/// deployed in it, and a commit older than what the repo has deployed could be applied under another spelling.
/// Folding two repos that differ only in case into one key only serialises more.
pub fn canonical_repo(repo: &str) -> String {
    let https = ssh_to_https(repo).unwrap_or_else(|| repo.to_owned());
    let https = match https.strip_prefix("http://") {
        Some(rest) => format!("https://{rest}"),
        None => https,
    };
    let lower = https.to_lowercase();
    let trimmed = lower.trim_end_matches('/');
    trimmed.strip_suffix(".git").unwrap_or(trimmed).trim_end_matches('/').to_owned()
}

/// The repo with any URL user info replaced by `***`, so credentials never reach a message or a log.
pub fn redact_repo_userinfo(repo: &str) -> std::borrow::Cow<'_, str> {
    let Some((scheme, rest)) = repo.split_once("://") else {
        return repo.into();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]).into(),
        None => repo.into(),
    }
}

/// True when `repo` has a URL scheme (`scheme://`); only such repos may be matched by a policy regex.
pub fn has_url_scheme(repo: &str) -> bool {
    repo.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
    })
}

/// Checks the actor: a login as GitHub (and other forges) write them, `^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`, optionally
/// followed by `[bot]` (`dependabot[bot]`). The actor lands in commit messages, audit lines and Slack: nothing
/// in it can be a space, a CI directive like `[skip ci]`, markup or a control character.
pub fn check_actor(actor: &str) -> Result<(), &'static str> {
    const RULE: &str = "must be a login: ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$, optionally followed by [bot]";
    let login = actor.strip_suffix("[bot]").unwrap_or(actor);
    let first_ok = login.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
    if !first_ok
        || check_charset(login, MAX_ACTOR_CHARS, |b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-').is_err()
    {
        return Err(RULE);
    }
    Ok(())
}

/// Checks a free-text comment (an approval's reason): at most 200 characters, none of them unsafe to show.
pub fn check_comment(comment: &str) -> Result<(), &'static str> {
    if comment.chars().count() > 200 {
        return Err("is longer than 200 characters");
    }
    crate::text::check_inert(comment)
}

/// Checks an idempotency key: `^[A-Za-z0-9_-]{1,80}$`.
pub fn check_request_id(id: &str) -> Result<(), &'static str> {
    check_charset(id, 80, |b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
        .map_err(|_| "must match ^[A-Za-z0-9_-]{1,80}$")
}

/// Checks an `update-variable` value: `^[A-Za-z0-9._:/@+-]{1,256}$`.
pub fn check_variable_value(value: &str) -> Result<(), &'static str> {
    check_charset(value, 256, |b| b.is_ascii_alphanumeric() || b"._:/@+-".contains(&b))
        .map_err(|_| "must match ^[A-Za-z0-9._:/@+-]{1,256}$")
}

/// Checks an image tag: `^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$` (the OCI tag grammar).
pub fn check_image_tag(tag: &str) -> Result<(), &'static str> {
    let first_ok = tag.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !first_ok {
        return Err("must match ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$");
    }
    check_charset(tag, 128, |b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        .map_err(|_| "must match ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
}

/// Checks a build context path: unit-path syntax, or exactly `.` for the repo root.
pub fn check_context_path(path: &str) -> Result<(), &'static str> {
    if path == "." {
        return Ok(());
    }
    check_unit_path(path)
}

/// Checks that `value` is 1..=max bytes, each accepted by `allowed`.
fn check_charset(value: &str, max: usize, allowed: impl Fn(u8) -> bool) -> Result<(), ()> {
    if value.is_empty() || value.len() > max || !value.bytes().all(allowed) {
        return Err(());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_refs_follow_git_check_ref_format() {
        let valid = ["main", "feature/x", "release-1.2", "a", "v1.0.0", "user/foo.bar", "héllo", "@x", "a@b", "日本"];
        for r in valid {
            assert_eq!(check_branch_ref(r), Ok(()), "{r:?}");
        }
        let long = "a".repeat(256);
        let invalid = [
            "",
            "@",
            "-main",
            "--upload-pack=x",
            "/main",
            "main/",
            "main.",
            "a..b",
            "a@{1}",
            "a//b",
            "a b",
            "a~1",
            "a^",
            "a:b",
            "a?",
            "a*",
            "a[",
            "a\\b",
            "a\tb",
            "a\nb",
            "a\u{7f}",
            "a\u{85}",
            "a\u{202e}b",
            "a\u{2028}",
            "a\u{200b}",
            "a\u{e000}",
            "a\u{378}",
            ".hidden",
            "a/.b",
            "x.lock",
            "a.lock/b",
            "refs/heads/main/../x",
            &long,
        ];
        for r in invalid {
            assert!(check_branch_ref(r).is_err(), "{r:?} must be invalid");
        }
        assert!(check_branch_ref(&"a".repeat(255)).is_ok());
    }

    #[test]
    fn full_shas_only() {
        assert!(is_full_commit_sha(&"a".repeat(40)));
        assert!(is_full_commit_sha(&"0".repeat(64)));
        for s in ["abc1234", &"a".repeat(39), &"a".repeat(41), &"A".repeat(40), &"g".repeat(40)] {
            assert!(!is_full_commit_sha(s), "{s:?}");
        }
    }

    #[test]
    fn unit_paths() {
        let ok = [
            "dev",
            "dev/us-east-1/dev/vpc",
            "_envcommon/x.hcl",
            "a/b-c/d_e/f.g",
            "0/1",
            "dev/app/.terragrunt-stack/db",
        ];
        for p in ok {
            assert_eq!(check_unit_path(p), Ok(()), "{p:?}");
        }
        let deep_ok = vec!["a"; 32].join("/");
        assert!(check_unit_path(&deep_ok).is_ok());
        let too_deep = vec!["a"; 33].join("/");
        let too_long = format!("{}/b", "a".repeat(511));
        let bad = [
            "",
            "/dev",
            "dev/",
            "dev//vpc",
            ".",
            "..",
            "dev/../prod",
            "./dev",
            "dev/.",
            ".git",
            "-rf",
            "dev/-x",
            "dev vpc",
            "dev/vpc;rm",
            "dev\\vpc",
            "dev/$(id)",
            "dév",
            "dev/\n",
            ".terragrunt-stack/x",
            "dev/.terragrunt-stacks/x",
            "dev/.terragrunt-stack/../x",
            &too_deep,
            &too_long,
        ];
        for p in bad {
            assert!(check_unit_path(p).is_err(), "{p:?} must be invalid");
        }
    }

    #[test]
    fn repo_shapes() {
        let ok = [
            "https://github.com/acme/infrastructure-live.git",
            "git@github.com:acme/infrastructure-live.git",
            "ssh://git@github.com/acme/infrastructure-live.git",
            "file:///srv/git/live.git",
            "/srv/git/live.git",
        ];
        for r in ok {
            assert_eq!(check_repo_shape(r), Ok(()), "{r:?}");
        }
        let bad = [
            "",
            "https://user:pw@github.com/acme/x.git",
            "https://token@github.com/acme/x.git",
            "https://github.com/acme/x.git?x=1",
            "https://github.com/acme/x.git#frag",
            "https://github.com/acme/x.git\nhttps://evil.com/x.git",
            "https://github.com/acme/x.git ",
            "https://gіthub.com/acme/x.git",
            "ext::sh -c touch% /tmp/pwned",
            "ext::sh",
            "fd::3",
            "--upload-pack=touch /tmp/x",
            "-u",
            "ssh://git:pw@github.com/acme/x.git",
            "ssh://evil@github.com/acme/x.git",
            "https://git@github.com/acme/x.git",
            "https://github.com/acme/../evil/x.git",
            "https://github.com/acme/./x.git",
            "https://github.com//acme/x.git",
            "git@github.com:acme/../evil/x.git",
        ];
        for r in bad {
            assert!(check_repo_shape(r).is_err(), "{r:?} must be rejected");
        }
        assert!(check_repo_shape(&"a".repeat(513)).is_err());
    }

    #[test]
    fn ssh_forms_name_their_https_repository() {
        let https = Some("https://github.com/acme/x.git".to_owned());
        assert_eq!(ssh_to_https("git@github.com:acme/x.git"), https);
        assert_eq!(ssh_to_https("ssh://git@github.com/acme/x.git"), https);
        for other in [
            "https://github.com/acme/x.git",
            "file:///srv/x.git",
            "/srv/x.git",
            "root@github.com:acme/x.git",
            "ssh://root@github.com/acme/x.git",
            "ssh://git@github.com:22/acme/x.git",
            "ssh://github.com/acme/x.git",
            "git@github.com:/acme/x.git",
            "git@github.com:-acme/x.git",
            "git@github.com:acme/../x.git",
            "git@:acme/x.git",
            "git@-evil.com:acme/x.git",
            "git@git@github.com:acme/x.git",
        ] {
            assert_eq!(ssh_to_https(other), None, "{other}");
        }
        assert_eq!(ssh_to_https("git@GitHub.com:Acme/x.git").as_deref(), Some("https://GitHub.com/Acme/x.git"));
    }

    #[test]
    fn every_spelling_of_a_repo_has_one_canonical_form() {
        let canonical = "https://github.com/acme/live";
        for spelling in [
            "https://github.com/acme/live",
            "https://github.com/acme/live.git",
            "https://github.com/acme/live/",
            "https://GitHub.com/Acme/Live.git",
            "http://github.com/acme/live",
            "git@github.com:acme/live.git",
            "ssh://git@github.com/Acme/live",
        ] {
            assert_eq!(canonical_repo(spelling), canonical, "{spelling}");
        }
        assert_ne!(canonical_repo("https://github.com/acme/live2"), canonical);
        assert_ne!(canonical_repo("https://github.com/acme/live.gitx"), canonical);
        assert_eq!(canonical_repo("file:///tmp/Work/live"), "file:///tmp/work/live");
    }

    #[test]
    fn userinfo_is_redacted() {
        assert_eq!(redact_repo_userinfo("https://x:ghp_1@github.com/a/b.git"), "https://***@github.com/a/b.git");
        assert_eq!(redact_repo_userinfo("https://a@b@github.com/a@b.git"), "https://***@github.com/a@b.git");
        assert_eq!(redact_repo_userinfo("https://github.com/a@b.git"), "https://github.com/a@b.git");
        assert_eq!(redact_repo_userinfo("git@github.com:a/b.git"), "git@github.com:a/b.git");
    }

    #[test]
    fn actors_and_ids() {
        for ok in ["octocat", "dependabot[bot]", "github-actions[bot]", "octo_acme", "a", "0x", &"x".repeat(64)] {
            assert_eq!(check_actor(ok), Ok(()), "{ok:?}");
        }
        for a in [
            "",
            " x",
            "x ",
            "Jane Doe",
            "a\nb",
            "a\u{1b}[31m",
            "a\u{202e}b",
            "a\u{200b}",
            "-x",
            "_x",
            "[bot]",
            "x[bot][bot]",
            "x[skip ci]",
            "bob\u{2028}",
            "ｏctocat",
            "a.b",
            "a@b",
            &"x".repeat(65),
        ] {
            assert!(check_actor(a).is_err(), "{a:?}");
        }
        assert!(check_request_id("ci-123_abc").is_ok());
        for id in ["", "a b", "a/b", &"x".repeat(81)] {
            assert!(check_request_id(id).is_err(), "{id:?}");
        }
    }

    #[test]
    fn values_tags_contexts() {
        assert!(check_variable_value("v1.2.3+build/x@sha256:abc").is_ok());
        for v in ["", "a b", "$(id)", "a;b", "`x`", &"x".repeat(257)] {
            assert!(check_variable_value(v).is_err(), "{v:?}");
        }
        assert!(check_image_tag("0123abc").is_ok());
        assert!(check_image_tag(&"a".repeat(128)).is_ok());
        for t in ["", ".x", "-x", "a:b", "a/b", &"a".repeat(129)] {
            assert!(check_image_tag(t).is_err(), "{t:?}");
        }
        assert!(check_context_path(".").is_ok());
        assert!(check_context_path("services/api").is_ok());
        for c in ["./x", "..", "/", "a/../b", ""] {
            assert!(check_context_path(c).is_err(), "{c:?}");
        }
    }
}
