//! The HTML `formatted_body` of the bot's notices, from their plain text:
//! `- ` lines as a list, `> ` lines as a quote, `code` as code, and Matrix
//! ids as matrix.to links (users, rooms, aliases) or code (events), so a
//! client shows ids a moderator can click and lists they can read. Every
//! character of the text is escaped first: nothing in a notice (a quoted
//! message, a display name) is ever taken as markup.

/// Escapes the characters HTML gives meaning to.
pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The whole notice as HTML.
pub(crate) fn render(text: &str) -> String {
    let mut out = String::new();
    // The block the previous line was in (`None` outside a list or quote), if any line came.
    let mut previous: Option<Option<&str>> = None;
    for line in text.lines() {
        let (block, content) = if let Some(item) = line.strip_prefix("- ") {
            (Some("ul"), item)
        } else if let Some(quoted) = line.strip_prefix("> ").or_else(|| (line == ">").then_some("")) {
            (Some("blockquote"), quoted)
        } else {
            (None, line)
        };
        match previous {
            Some(before) if before == block => {
                if block != Some("ul") {
                    out.push_str("<br>");
                }
            }
            _ => {
                if let Some(Some(tag)) = previous {
                    out.push_str(&format!("</{tag}>"));
                }
                if let Some(tag) = block {
                    out.push_str(&format!("<{tag}>"));
                }
            }
        }
        match block {
            Some("ul") => out.push_str(&format!("<li>{}</li>", inline(content))),
            _ => out.push_str(&inline(content)),
        }
        previous = Some(block);
    }
    if let Some(Some(tag)) = previous {
        out.push_str(&format!("</{tag}>"));
    }
    out
}

/// One line: `code` spans, and ids linked outside them.
fn inline(line: &str) -> String {
    let mut out = String::new();
    for (i, part) in line.split('`').enumerate() {
        // An unmatched backtick is shown as it is.
        let closed = i % 2 == 1 && line.split('`').count() > i + 1;
        if closed {
            out.push_str(&format!("<code>{}</code>", escape(part)));
        } else {
            if i % 2 == 1 {
                out.push('`');
            }
            out.push_str(&link_ids(part));
        }
    }
    out
}

/// Escapes `text`, linking the Matrix ids in it.
fn link_ids(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(['@', '!', '#', '$']) {
        let (before, from) = rest.split_at(at);
        let boundary = before.chars().next_back().is_none_or(|c| c.is_whitespace() || "([“\"'".contains(c));
        let end = from.find(|c: char| c.is_whitespace() || ")]”\"',;<>".contains(c)).unwrap_or(from.len());
        let id = from[..end].trim_end_matches(['.', ':', '!', '?']);
        out.push_str(&escape(before));
        match (boundary, kind(id)) {
            (true, Some(Kind::Link)) => {
                out.push_str(&format!("<a href=\"https://matrix.to/#/{}\">{}</a>", escape(id), escape(id)))
            }
            (true, Some(Kind::Code)) => out.push_str(&format!("<code>{}</code>", escape(id))),
            _ => {
                // Not an id: the sigil alone, and go on after it.
                out.push_str(&escape(&from[..1]));
                rest = &from[1..];
                continue;
            }
        }
        rest = &from[id.len()..];
    }
    out.push_str(&escape(rest));
    out
}

enum Kind {
    Link,
    Code,
}

/// Whether `word` is a user id, room alias or room id (linked) or an event id (code).
fn kind(word: &str) -> Option<Kind> {
    let mut chars = word.chars();
    let sigil = chars.next()?;
    let body = chars.as_str();
    let plain = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "._=-/+:[]~".contains(c));
    match sigil {
        '@' | '#' => {
            let (local, server) = body.split_once(':')?;
            (plain(local) && plain(server) && server.contains(|c: char| c.is_ascii_alphanumeric()))
                .then_some(Kind::Link)
        }
        // Room ids: `!opaque:server` before version 12, `!opaque` (43 characters) since.
        '!' => (body.len() >= 10 && plain(body)).then_some(Kind::Link),
        '$' => (body.len() >= 10 && plain(body)).then_some(Kind::Code),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_quotes_code_and_ids_render_and_nothing_injects() {
        let text = "Audit trail about @spam:example.org, newest first (2 of 2):\n\
                    - flooding: ban @spam:example.org in !abcdefghijkl:example.org → done\n\
                    - flooding: redact $0123456789abcdef → done\n\
                    Reported:\n\
                    > <b>buy</b> pills & more\n\
                    Run `protections show flooding` or mail me@example.org!";
        let html = render(text);
        assert_eq!(
            html,
            "Audit trail about <a href=\"https://matrix.to/#/@spam:example.org\">@spam:example.org</a>, newest first (2 of 2):\
             <ul><li>flooding: ban <a href=\"https://matrix.to/#/@spam:example.org\">@spam:example.org</a> in \
             <a href=\"https://matrix.to/#/!abcdefghijkl:example.org\">!abcdefghijkl:example.org</a> → done</li>\
             <li>flooding: redact <code>$0123456789abcdef</code> → done</li></ul>\
             Reported:<blockquote>&lt;b&gt;buy&lt;/b&gt; pills &amp; more</blockquote>\
             Run <code>protections show flooding</code> or mail me@example.org!"
        );
        // A quoted message cannot close the quote or open a tag, nor can a fake id.
        let hostile = render("> </blockquote><script>x</script>\n- @a:b\"><img src=x>");
        assert!(!hostile.contains("<script") && !hostile.contains("<img"), "{hostile}");
        assert_eq!(render("one\ntwo"), "one<br>two");
        assert_eq!(render("a ` b"), "a ` b");
    }
}
