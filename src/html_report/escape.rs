//! The one escaping function of the HTML report: every piece of text the report prints (usernames,
//! reasons, field and pool names, labels in SVG) goes through [`escape`], in element content and
//! in double-quoted attribute values alike.

use std::borrow::Cow;

/// `text` made safe for HTML (and SVG inside HTML) element content and double- or single-quoted
/// attribute values: `&`, `<`, `>`, `"` and `'` become character references, and characters an
/// HTML5 parser reports as errors (control characters other than TAB, LF and CR; C1 controls;
/// noncharacters) become visible stand-ins (C0 controls their Control Pictures glyph, e.g. U+0000
/// becomes `␀`; the others U+FFFD), so that a hostile username can neither open a tag nor make
/// the file invalid.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' => out.push(c),
            // CR is normalised away by parsers; keep it visible as one space.
            '\r' => out.push(' '),
            c if (c as u32) < 0x20 => {
                out.push(char::from_u32(0x2400 + c as u32).unwrap_or('\u{FFFD}'))
            }
            '\u{7F}' => out.push('\u{2421}'),
            c if is_bad(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    matches!(c, '&' | '<' | '>' | '"' | '\'' | '\r') || is_bad(c) || (c as u32) < 0x20
}

/// Characters that HTML5 calls parse errors in input: controls (but TAB, LF, CR, handled apart)
/// and noncharacters.
fn is_bad(c: char) -> bool {
    let u = c as u32;
    (u < 0x20 && !matches!(c, '\t' | '\n' | '\r'))
        || (0x7F..=0x9F).contains(&u)
        || (0xFDD0..=0xFDEF).contains(&u)
        || (u & 0xFFFE) == 0xFFFE
}

/// `text` cut to at most `max` characters (an ellipsis marks a cut), before escaping.
pub fn shorten(text: &str, max: usize) -> Cow<'_, str> {
    if text.chars().count() <= max {
        return Cow::Borrowed(text);
    }
    let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
    s.push('…');
    Cow::Owned(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_characters_become_references_and_plain_text_is_untouched() {
        assert_eq!(
            escape("<script>alert(1)</script>@example.com"),
            "&lt;script&gt;alert(1)&lt;/script&gt;@example.com"
        );
        assert_eq!(
            escape(r#"a"b'c&d"#),
            "a&quot;b&#39;c&amp;d",
            "quotes are escaped for attributes"
        );
        assert_eq!(escape("&amp;"), "&amp;amp;", "escaping is not idempotent");
        assert!(matches!(escape("ada@example.com"), Cow::Borrowed(_)));
        assert_eq!(escape("Zoë 日本 🙂"), "Zoë 日本 🙂");
        assert_eq!(escape(""), "");
    }

    #[test]
    fn characters_a_parser_rejects_become_visible_stand_ins() {
        assert_eq!(escape("a\0b"), "a\u{2400}b");
        assert_eq!(escape("\u{1b}[31m"), "\u{241b}[31m");
        assert_eq!(escape("x\u{7f}"), "x\u{2421}");
        assert_eq!(escape("x\u{85}y"), "x\u{FFFD}y");
        assert_eq!(
            escape("\u{FDD0}\u{FFFE}\u{1FFFF}"),
            "\u{FFFD}\u{FFFD}\u{FFFD}"
        );
        assert_eq!(escape("a\tb\nc\rd"), "a\tb\nc d");
        for c in (0u32..0x110000).filter_map(char::from_u32) {
            let e = escape(c.encode_utf8(&mut [0; 4])).into_owned();
            assert!(!e.contains(['<', '>', '"', '\'']), "{c:?} → {e:?}");
            assert!(!e.chars().any(is_bad), "{c:?} → {e:?}");
        }
    }

    #[test]
    fn shorten_cuts_characters_not_bytes() {
        assert_eq!(shorten("abcdef", 6), "abcdef");
        assert_eq!(shorten("abcdefg", 6), "abcde…");
        assert_eq!(shorten("ééééééé", 3), "éé…");
    }
}
