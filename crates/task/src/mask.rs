//! Masking secrets in anything the task prints: tools may echo a token (git errors quote URLs, for example).

use std::borrow::Cow;

/// Replaces every known secret value with `***`.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    secrets: Vec<String>,
}

/// Values this short are not masked: hiding every `a` in the output would destroy it and protect nothing.
const MIN_SECRET_LEN: usize = 6;

impl Masker {
    /// A masker for these secret values. Multi-line values (SSH keys) are masked line by line as well.
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Masker {
        let mut all: Vec<String> = Vec::new();
        for secret in secrets {
            let secret = secret.trim();
            if secret.len() >= MIN_SECRET_LEN {
                all.push(secret.to_owned());
            }
            all.extend(
                secret
                    .lines()
                    .map(str::trim)
                    .filter(|l| l.len() >= MIN_SECRET_LEN && !l.starts_with("-----"))
                    .map(str::to_owned),
            );
        }
        // Longest first, so a secret that contains another is replaced whole.
        all.sort_by_key(|s| std::cmp::Reverse(s.len()));
        all.dedup();
        Masker { secrets: all }
    }

    /// `text` with every secret replaced.
    pub fn mask<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let mut out = Cow::Borrowed(text);
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), "***"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_tokens_and_key_lines() {
        let key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nQyNTUxOQAAACB\n-----END OPENSSH PRIVATE KEY-----";
        let m = Masker::new(["ghp_CANARY123456", key, "abc"]);
        assert_eq!(m.mask("fatal: https://x:ghp_CANARY123456@github.com"), "fatal: https://x:***@github.com");
        assert_eq!(m.mask("key line b3BlbnNzaC1rZXktdjEAAAAA here"), "key line *** here");
        assert_eq!(m.mask("abc stays"), "abc stays");
        assert!(matches!(m.mask("nothing secret"), Cow::Borrowed(_)));
    }
}
