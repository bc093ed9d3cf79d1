//! Building blocks for structured inputs: JSON trees that mix known field
//! names and values with wrongly typed and random ones, and text made of
//! known words, random tokens and long repetitions. Random bytes alone
//! rarely get past a parser's first check; these reach the code behind it.

use arbitrary::{Arbitrary, Result, Unstructured};
use serde_json::{Map, Number, Value};

/// The longest text [`text`] makes by repeating a piece.
pub const MAX_REPEATED: usize = 16 << 10;

/// The field names and string values a format knows.
#[derive(Debug, Clone, Copy)]
pub struct Vocabulary<'a> {
    pub keys: &'a [&'a str],
    pub strings: &'a [&'a str],
}

/// One of `items` (the first when the data has run out).
pub fn pick<'a, T>(u: &mut Unstructured<'_>, items: &'a [T]) -> Result<&'a T> {
    u.choose(items)
}

/// True `percent` times in a hundred.
pub fn chance(u: &mut Unstructured<'_>, percent: u8) -> Result<bool> {
    Ok(u.int_in_range(0..=99u8)? < percent)
}

/// Text: mostly a known string, else random text, a long repetition (for
/// anything quadratic), or a few pieces glued together.
pub fn text(u: &mut Unstructured<'_>, known: &[&str]) -> Result<String> {
    Ok(match u.int_in_range(0..=9u8)? {
        0..=5 if !known.is_empty() => (*pick(u, known)?).to_owned(),
        8 => {
            let piece = if known.is_empty() { String::arbitrary(u)? } else { (*pick(u, known)?).to_owned() };
            // Up to 16 KiB: a whole event is at most 64 KiB.
            let most = (MAX_REPEATED / piece.len().max(1)).clamp(1, 400);
            piece.repeat(u.int_in_range(1..=most)?)
        }
        9 => {
            let mut out = String::new();
            for _ in 0..u.int_in_range(1..=4u8)? {
                if !known.is_empty() && chance(u, 50)? {
                    out.push_str(pick(u, known)?);
                } else {
                    out.push_str(&String::arbitrary(u)?);
                }
            }
            out
        }
        _ => String::arbitrary(u)?,
    })
}

/// A number: small, at the edges of the integer types, or fractional.
pub fn number(u: &mut Unstructured<'_>) -> Result<Value> {
    Ok(match u.int_in_range(0..=5u8)? {
        0 => Value::from(u.int_in_range(0..=10u8)?),
        1 => Value::from(i64::arbitrary(u)?),
        2 => Value::from(u64::arbitrary(u)?),
        3 => Value::from(*pick(u, &[i64::MIN, -1, u32::MAX as i64 + 1, i64::MAX])?),
        _ => Number::from_f64(f64::arbitrary(u)?).map_or(Value::from(0.5), Value::Number),
    })
}

/// Any JSON value, nested at most `depth` deep, keys and strings mostly
/// from `vocabulary`.
pub fn value(u: &mut Unstructured<'_>, vocabulary: Vocabulary<'_>, depth: u8) -> Result<Value> {
    let most = if depth == 0 { 5 } else { 7 };
    Ok(match u.int_in_range(0..=most)? {
        0 => Value::Null,
        1 => Value::Bool(bool::arbitrary(u)?),
        2 => number(u)?,
        3..=5 => Value::String(text(u, vocabulary.strings)?),
        6 => {
            let len = u.int_in_range(0..=4u8)?;
            Value::Array((0..len).map(|_| value(u, vocabulary, depth - 1)).collect::<Result<_>>()?)
        }
        _ => Value::Object(object(u, vocabulary, depth - 1)?),
    })
}

/// An object of up to eight fields, named mostly from `vocabulary`.
pub fn object(u: &mut Unstructured<'_>, vocabulary: Vocabulary<'_>, depth: u8) -> Result<Map<String, Value>> {
    let mut map = Map::new();
    for _ in 0..u.int_in_range(0..=8u8)? {
        let key = if vocabulary.keys.is_empty() || chance(u, 10)? {
            String::arbitrary(u)?
        } else {
            (*pick(u, vocabulary.keys)?).to_owned()
        };
        map.insert(key, value(u, vocabulary, depth)?);
    }
    Ok(map)
}

/// `text` cut short at a random character, sometimes: what a parser sees
/// from a truncated file or message.
pub fn maybe_truncated(u: &mut Unstructured<'_>, text: String) -> Result<String> {
    if text.is_empty() || !chance(u, 5)? {
        return Ok(text);
    }
    let cut = u.int_in_range(0..=text.len())?;
    let cut = (0..=cut).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
    Ok(text[..cut].to_owned())
}
