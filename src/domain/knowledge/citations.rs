//! The citation guardrail, applied to a model's answer as it streams. The model is
//! given numbered sources and told to cite them as `[n]`; what reaches the visitor
//! is decided here, not by the model:
//!
//! - a marker naming a source that was given is kept, renumbered in order of first
//!   citation (the first source cited is `[1]`, the next new one `[2]`, …), so the
//!   stored `sources` list, in that order, matches the numbers in the text;
//! - a marker naming no source given (`[9]` when there were four, or a letter such
//!   as `[n]`, which small models copy from the instructions) is dropped and cites
//!   nothing;
//! - `[1, 3]` is two markers, `[1][2]`; anything else in brackets (`[optional]`,
//!   a Markdown link's text) is text.
//!
//! Text arrives in pieces that split markers anywhere (`[` in one piece, `2]` in
//! the next), so an unfinished marker waits for the next piece before it is sent.

/// Characters a marker has at most (`[12, 3, 4]`); a longer bracket is text.
const MAX_MARKER: usize = 24;

/// The guardrail over one answer.
pub struct Citations {
    /// How many sources were given (markers `[1]` to `[sources]`).
    sources: usize,
    /// Text held back: an unfinished marker.
    held: String,
    /// The sources cited (0-based), in order of first citation.
    order: Vec<usize>,
    /// The last character let through, to mend the space a dropped marker leaves.
    last: Option<char>,
    /// A marker was just dropped.
    dropped: bool,
}

/// What a bracket at the start of a text is.
enum Bracket {
    /// A marker of this many characters, naming these items.
    Marker(usize, Vec<Item>),
    /// Text that only looks like the start of one.
    Text,
    /// It may be a marker: more text is needed.
    Unfinished,
}

enum Item {
    Number(usize),
    Letter,
}

impl Citations {
    pub fn new(sources: usize) -> Citations {
        Citations {
            sources,
            held: String::new(),
            order: Vec::new(),
            last: None,
            dropped: false,
        }
    }

    /// The text to send for `piece` (maybe less, maybe some held from before).
    pub fn push(&mut self, piece: &str) -> String {
        self.held.push_str(piece);
        let mut out = String::new();
        loop {
            let Some(at) = self.held.find('[') else {
                let rest = std::mem::take(&mut self.held);
                self.emit(&mut out, &rest);
                break;
            };
            let before = self.held[..at].to_owned();
            self.emit(&mut out, &before);
            let rest = self.held[at..].to_owned();
            match bracket(&rest) {
                Bracket::Unfinished => {
                    self.held = rest;
                    break;
                }
                Bracket::Text => {
                    self.emit(&mut out, "[");
                    self.held = rest[1..].to_owned();
                }
                Bracket::Marker(len, items) => {
                    let rendered = self.render(&items);
                    if rendered.is_empty() {
                        self.dropped = true;
                    } else {
                        self.emit(&mut out, &rendered);
                    }
                    self.held = rest[len..].to_owned();
                }
            }
        }
        out
    }

    /// The answer ended: what is still held goes out as text.
    pub fn finish(&mut self) -> String {
        let rest = std::mem::take(&mut self.held);
        let mut out = String::new();
        self.emit(&mut out, &rest);
        out
    }

    /// The sources cited (0-based indices of those given), in order of first
    /// citation.
    pub fn cited(&self) -> &[usize] {
        &self.order
    }

    fn emit(&mut self, out: &mut String, text: &str) {
        let mut text = text;
        if self.dropped && !text.is_empty() {
            // "as shown [9]." should not read "as shown ." nor "as shown  and".
            if self.last == Some(' ')
                && let Some(first) = text.chars().next()
                && (first == ' ' || matches!(first, '.' | ',' | ';' | ':' | '!' | '?'))
            {
                if first == ' ' {
                    text = &text[1..];
                } else if out.ends_with(' ') {
                    out.pop();
                }
            }
            self.dropped = false;
        }
        if let Some(last) = text.chars().last() {
            self.last = Some(last);
        }
        out.push_str(text);
    }

    /// `[a][b]` for the items that name a source given, numbered by first citation.
    fn render(&mut self, items: &[Item]) -> String {
        let mut out = String::new();
        for item in items {
            let Item::Number(n) = item else { continue };
            if *n == 0 || *n > self.sources {
                continue;
            }
            let index = n - 1;
            let number = match self.order.iter().position(|cited| *cited == index) {
                Some(at) => at + 1,
                None => {
                    self.order.push(index);
                    self.order.len()
                }
            };
            out.push_str(&format!("[{number}]"));
        }
        out
    }
}

/// What the bracket that starts `text` is.
fn bracket(text: &str) -> Bracket {
    debug_assert!(text.starts_with('['));
    let mut items = Vec::new();
    let mut chars = text.char_indices().skip(1).peekable();
    loop {
        // An item: 1 to 3 digits, or one ASCII letter.
        let Some((_, c)) = chars.next() else {
            return Bracket::Unfinished;
        };
        if c.is_ascii_digit() {
            let mut number = c.to_digit(10).unwrap_or(0) as usize;
            let mut digits = 1;
            while let Some(&(_, d)) = chars.peek() {
                if !d.is_ascii_digit() {
                    break;
                }
                digits += 1;
                if digits > 3 {
                    return Bracket::Text;
                }
                number = number * 10 + d.to_digit(10).unwrap_or(0) as usize;
                chars.next();
            }
            items.push(Item::Number(number));
        } else if c.is_ascii_alphabetic() {
            items.push(Item::Letter);
        } else {
            return Bracket::Text;
        }
        // Then `]`, or `,` and spaces before the next item.
        let Some((at, c)) = chars.next() else {
            return Bracket::Unfinished;
        };
        match c {
            ']' => return Bracket::Marker(at + 1, items),
            ',' => {
                while chars.peek().is_some_and(|(_, c)| *c == ' ') {
                    chars.next();
                }
                if chars.peek().is_some_and(|(at, _)| *at >= MAX_MARKER) {
                    return Bracket::Text;
                }
            }
            _ => return Bracket::Text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything sent for `pieces`, with `sources` given.
    fn sent(sources: usize, pieces: &[&str]) -> (String, Vec<usize>) {
        let mut citations = Citations::new(sources);
        let mut out: String = pieces.iter().map(|piece| citations.push(piece)).collect();
        out.push_str(&citations.finish());
        (out, citations.cited().to_vec())
    }

    #[test]
    fn markers_are_renumbered_in_order_of_first_citation() {
        let (text, cited) = sent(4, &["Schedule it [3]. Drafts stay private [1][3]."]);
        assert_eq!(text, "Schedule it [1]. Drafts stay private [2][1].");
        assert_eq!(cited, [2, 0]);
    }

    #[test]
    fn markers_naming_no_source_given_never_reach_the_visitor() {
        let (text, cited) = sent(4, &["See [9] and [n] or [m], then [2]."]);
        assert_eq!(text, "See and or, then [1].");
        assert_eq!(cited, [1]);
        let (text, cited) = sent(2, &["Both [1, 2, 7]."]);
        assert_eq!(text, "Both [1][2].");
        assert_eq!(cited, [0, 1]);
    }

    #[test]
    fn markers_split_across_pieces_are_read_whole() {
        let whole = "Open Settings [2], then Media [1, 2].";
        let (expected, expected_cited) = sent(3, &[whole]);
        let chars: Vec<String> = whole.chars().map(String::from).collect();
        let pieces: Vec<&str> = chars.iter().map(String::as_str).collect();
        assert_eq!(sent(3, &pieces), (expected.clone(), expected_cited));
        assert_eq!(expected, "Open Settings [1], then Media [2][1].");
    }

    #[test]
    fn other_brackets_are_text() {
        let (text, cited) = sent(
            3,
            &["Use [optional] flags, a [link](https://x), [1234], [ ] and an unclosed [2"],
        );
        assert_eq!(
            text,
            "Use [optional] flags, a [link](https://x), [1234], [ ] and an unclosed [2"
        );
        assert!(cited.is_empty());
    }
}
