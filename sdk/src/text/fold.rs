//! Folding text so that look-alike letters, inserted invisible characters,
//! accents, styled alphabets and case do not hide a word: the same folding
//! is applied to the words watched for and to what is read (a message, a
//! display name).

/// Characters that render as nothing (or join others) and are dropped.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}' | '\u{180E}'
        | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}'
        | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}')
}

/// Combining marks (accents written as separate characters) are dropped.
fn is_combining(c: char) -> bool {
    matches!(c, '\u{0300}'..='\u{036F}' | '\u{1AB0}'..='\u{1AFF}' | '\u{1DC0}'..='\u{1DFF}' | '\u{20D0}'..='\u{20FF}' | '\u{FE20}'..='\u{FE2F}')
}

/// Latin letters with accents → the base letter.
fn unaccent(c: char) -> Option<char> {
    const TABLE: &[(&str, char)] = &[
        ("àáâãäåāăąǎ", 'a'),
        ("çćĉċč", 'c'),
        ("ďđ", 'd'),
        ("èéêëēĕėęě", 'e'),
        ("ĝğġģ", 'g'),
        ("ĥħ", 'h'),
        ("ìíîïĩīĭįıǐ", 'i'),
        ("ĵ", 'j'),
        ("ķ", 'k'),
        ("ĺļľŀł", 'l'),
        ("ñńņňŉ", 'n'),
        ("òóôõöøōŏőǒ", 'o'),
        ("ŕŗř", 'r'),
        ("śŝşšș", 's'),
        ("ţťŧț", 't'),
        ("ùúûüũūŭůűųǔ", 'u'),
        ("ŵ", 'w'),
        ("ýÿŷ", 'y'),
        ("źżž", 'z'),
    ];
    TABLE.iter().find(|(set, _)| set.contains(c)).map(|(_, base)| *base)
}

/// Letters of other scripts that look like Latin ones (after lower-casing).
fn latin_lookalike(c: char) -> Option<char> {
    Some(match c {
        // Cyrillic
        'а' => 'a',
        'в' => 'b',
        'с' => 'c',
        'ԁ' => 'd',
        'е' | 'ё' => 'e',
        'һ' => 'h',
        'і' | 'ї' => 'i',
        'ј' => 'j',
        'к' => 'k',
        'м' => 'm',
        'н' => 'h',
        'о' => 'o',
        'р' => 'p',
        'ԛ' => 'q',
        'ѕ' => 's',
        'т' => 't',
        'у' => 'y',
        'х' => 'x',
        'ԝ' => 'w',
        'ь' => 'b',
        // Greek
        'α' => 'a',
        'β' => 'b',
        'ε' => 'e',
        'η' => 'n',
        'ι' => 'i',
        'κ' => 'k',
        'ν' => 'v',
        'ο' => 'o',
        'ρ' => 'p',
        'τ' => 't',
        'υ' => 'u',
        'χ' => 'x',
        'ω' => 'w',
        'ζ' => 'z',
        // Latin look-alikes
        'ɑ' => 'a',
        'ɡ' => 'g',
        'ɩ' => 'i',
        'ʟ' => 'l',
        'ɴ' => 'n',
        'ʀ' => 'r',
        'ꜱ' => 's',
        'ᴜ' => 'u',
        _ => return None,
    })
}

/// Styled alphabets (full-width, mathematical bold/italic/…, circled) → plain.
fn unstyle(c: char) -> Option<char> {
    let n = c as u32;
    let plain = match n {
        0xFF01..=0xFF5E => n - 0xFF01 + 0x21,
        0x1D400..=0x1D6A3 => {
            let i = (n - 0x1D400) % 52;
            if i < 26 { 'A' as u32 + i } else { 'a' as u32 + i - 26 }
        }
        0x1D7CE..=0x1D7FF => '0' as u32 + (n - 0x1D7CE) % 10,
        0x24B6..=0x24CF => 'a' as u32 + n - 0x24B6,
        0x24D0..=0x24E9 => 'a' as u32 + n - 0x24D0,
        0x1F130..=0x1F149 => 'a' as u32 + n - 0x1F130,
        0x1F150..=0x1F169 => 'a' as u32 + n - 0x1F150,
        0x1F170..=0x1F189 => 'a' as u32 + n - 0x1F170,
        0x1F1E6..=0x1F1FF => 'a' as u32 + n - 0x1F1E6,
        _ => return None,
    };
    char::from_u32(plain)
}

/// The folded form: lower case, plain Latin where a character only looks
/// different, invisible characters and accents gone, whitespace runs as one space.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.chars() {
        if is_invisible(c) || is_combining(c) {
            continue;
        }
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        let c = unstyle(c).unwrap_or(c);
        for lower in c.to_lowercase() {
            let plain = unaccent(lower).or_else(|| latin_lookalike(lower)).unwrap_or(lower);
            if space {
                out.push(' ');
                space = false;
            }
            out.push(plain);
        }
    }
    out
}

/// Whether `phrase` (folded) occurs in `text` (folded) as whole words.
pub fn contains_phrase(text: &str, phrase: &str) -> bool {
    if phrase.is_empty() {
        return false;
    }
    let boundary = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric());
    let mut from = 0;
    while let Some(at) = text[from..].find(phrase) {
        let start = from + at;
        let end = start + phrase.len();
        if boundary(text[..start].chars().next_back()) && boundary(text[end..].chars().next()) {
            return true;
        }
        from = start + text[start..].chars().next().map_or(1, char::len_utf8);
    }
    false
}

/// Text of an HTML body: tags removed (inline ones join their text, as they
/// render: `<b>che</b>ap` is "cheap"; block ones separate words), the common
/// entities decoded.
pub fn strip_html(html: &str) -> String {
    const BLOCKS: &[&str] = &[
        "br",
        "p",
        "div",
        "li",
        "ul",
        "ol",
        "tr",
        "td",
        "th",
        "blockquote",
        "pre",
        "hr",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
    ];
    let mut out = String::with_capacity(html.len());
    let mut tag: Option<String> = None;
    for c in html.chars() {
        match (&mut tag, c) {
            (None, '<') => tag = Some(String::new()),
            (Some(name), '>') => {
                let bare = name.trim_start_matches('/');
                let bare: String = bare.chars().take_while(char::is_ascii_alphanumeric).collect();
                if BLOCKS.contains(&bare.to_ascii_lowercase().as_str()) {
                    out.push(' ');
                }
                tag = None;
            }
            (Some(name), c) => name.push(c),
            (None, c) => out.push(c),
        }
    }
    out.replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookalikes_invisibles_accents_and_styles_fold_away() {
        assert_eq!(fold("Buy  NOW"), "buy now");
        assert_eq!(fold("b\u{200B}u\u{200D}y"), "buy");
        assert_eq!(fold("ВUУ"), "buy", "Cyrillic В and У");
        assert_eq!(fold("сheaр"), "cheap", "Cyrillic с and р");
        assert_eq!(fold("ｃｈｅａｐ"), "cheap");
        assert_eq!(fold("𝐜𝐡𝐞𝐚𝐩"), "cheap");
        assert_eq!(fold("ⓒⓗⓔⓐⓟ"), "cheap");
        assert_eq!(fold("çhéåp"), "cheap");
        assert_eq!(fold("che\u{0301}ap"), "cheap");
    }

    #[test]
    fn phrases_match_whole_words() {
        assert!(contains_phrase("get cheap pills", "cheap pills"));
        assert!(contains_phrase("cheap!", "cheap"));
        assert!(!contains_phrase("cheapest", "cheap"));
        assert!(!contains_phrase("class", "ass"));
        assert!(contains_phrase("a class ass", "ass"));
        assert!(!contains_phrase("anything", ""));
    }

    #[test]
    fn html_is_read_as_text() {
        assert_eq!(fold(&strip_html("<b>che</b>ap &amp; <i>fast</i>")), "cheap & fast");
        assert_eq!(fold(&strip_html("<p>cheap</p><p>pills</p>")), "cheap pills");
        assert_eq!(fold(&strip_html("a<br/>b")), "a b");
    }
}
