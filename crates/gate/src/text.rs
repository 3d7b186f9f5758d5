//! Untrusted text, made inert. A value from a request (or from a tool's output) can carry characters that
//! forge or hide text wherever it is shown: line and paragraph separators and C0/C1 controls break a log line in
//! two, bidi and zero-width marks reorder or hide what a reader sees, and private-use or unassigned code points
//! render as anything. Those are Unicode's general categories Cc, Cf, Zl, Zp, Co and Cn.
//!
//! Fields that name things (refs, actors, comments, paths) refuse them outright ([`check_inert`]). Everything that
//! is shown (messages, logs, audit lines) escapes them ([`inert`]), and JSON we write escapes them too
//! ([`to_json_string`]): serde_json writes U+0085, U+2028 and bidi controls raw, which is valid JSON but not inert.

use serde::Serialize;
use std::borrow::Cow;
use unicode_general_category::{get_general_category, GeneralCategory};

/// True for a character in Cc, Cf, Zl, Zp, Co or Cn.
pub fn is_unsafe(c: char) -> bool {
    matches!(
        get_general_category(c),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
            | GeneralCategory::PrivateUse
            | GeneralCategory::Unassigned
    )
}

/// Refuses a value holding any character of those categories.
pub fn check_inert(value: &str) -> Result<(), &'static str> {
    if value.chars().any(is_unsafe) {
        return Err("contains a control, format (bidi, zero-width), separator, private-use or unassigned character");
    }
    Ok(())
}

/// `value` with every unsafe character written as `\u{XXXX}` (and backslashes doubled, so the escape can't be
/// faked). Borrowed when there is nothing to escape.
pub fn inert(value: &str) -> Cow<'_, str> {
    if !value.chars().any(|c| c == '\\' || is_unsafe(c)) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            c if is_unsafe(c) => out.push_str(&format!("\\u{{{:04x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Like [`inert`], but keeps tabs: for lines of a tool's output, where a tab is layout and can't forge a line.
pub fn inert_line(line: &str) -> Cow<'_, str> {
    if !line.chars().any(|c| c != '\t' && (c == '\\' || is_unsafe(c))) {
        return Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len() + 8);
    for c in line.chars() {
        match c {
            '\t' => out.push('\t'),
            '\\' => out.push_str("\\\\"),
            c if is_unsafe(c) => out.push_str(&format!("\\u{{{:04x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// JSON text with every unsafe character escaped as `\uXXXX` (surrogate pairs above U+FFFF). Outside strings JSON
/// holds only ASCII punctuation, letters, digits and whitespace; serde_json escapes C0 controls inside strings.
/// So every unsafe character other than JSON's own whitespace is inside a string, where the escape means exactly
/// the same character.
pub fn inert_json(json: &str) -> Cow<'_, str> {
    let needs_escape = |c: char| is_unsafe(c) && !matches!(c, '\n' | '\r' | '\t');
    if !json.chars().any(needs_escape) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if needs_escape(c) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `serde_json::to_string`, with unsafe characters escaped.
pub fn to_json_string(value: &impl Serialize) -> serde_json::Result<String> {
    Ok(inert_json(&serde_json::to_string(value)?).into_owned())
}

/// `serde_json::to_string_pretty`, with unsafe characters escaped.
pub fn to_json_string_pretty(value: &impl Serialize) -> serde_json::Result<String> {
    Ok(inert_json(&serde_json::to_string_pretty(value)?).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: [char; 9] =
        ['\u{1b}', '\u{85}', '\u{2028}', '\u{2029}', '\u{202e}', '\u{200b}', '\u{feff}', '\u{e000}', '\u{378}'];

    #[test]
    fn every_category_is_refused_and_escaped() {
        for c in HOSTILE {
            let value = format!("a{c}b");
            assert!(check_inert(&value).is_err(), "{:04x}", u32::from(c));
            let shown = inert(&value);
            assert!(!shown.contains(c), "{shown}");
            assert_eq!(shown, format!("a\\u{{{:04x}}}b", u32::from(c)));
        }
        for fine in ["main", "feature/héllo", "日本語", "a b", "emoji-🚀"] {
            assert_eq!(check_inert(fine), Ok(()), "{fine}");
            assert!(matches!(inert(fine), Cow::Borrowed(_)));
        }
        assert_eq!(inert("a\\u{202e}"), "a\\\\u{202e}", "a literal escape can't pass for a real one");
        assert_eq!(inert_line("a\tb\u{1b}[31m"), "a\tb\\u{001b}[31m");
    }

    #[test]
    fn json_is_valid_and_inert() {
        let value = serde_json::json!({"actor": HOSTILE.iter().collect::<String>(), "emoji": "🚀"});
        let raw = serde_json::to_string(&value).expect("json");
        assert!(raw.contains('\u{2028}') && raw.contains('\u{85}'), "serde_json writes them raw");
        let text = to_json_string(&value).expect("json");
        assert!(!text.chars().any(is_unsafe), "{text}");
        let pretty = to_json_string_pretty(&serde_json::json!({"a": "\u{2028}\u{7f}", "b": [1]})).expect("json");
        assert_eq!(pretty, "{\n  \"a\": \"\\u2028\\u007f\",\n  \"b\": [\n    1\n  ]\n}", "layout kept");
        assert!(text.contains("\\u2028") && text.contains("🚀"), "{text}");
        let back: serde_json::Value = serde_json::from_str(&text).expect("still JSON");
        assert_eq!(back, value, "and means the same");
        assert_eq!(inert_json("\"\u{10ffff}\""), "\"\\udbff\\udfff\"");
    }
}
