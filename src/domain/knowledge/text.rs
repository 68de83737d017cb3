//! Text analysis shared by the responder, the auto-tagger and the insights: words,
//! stop words and stems (Snowball English), so "upload", "uploads" and "uploading"
//! are one term.

use std::sync::LazyLock;

use rust_stemmers::{Algorithm, Stemmer};

static STEMMER: LazyLock<Stemmer> = LazyLock::new(|| Stemmer::create(Algorithm::English));

/// Words that say nothing about a topic.
const STOP_WORDS: &[&str] = &[
    "a", "about", "after", "again", "all", "am", "an", "and", "any", "are", "as", "at", "be",
    "been", "before", "but", "by", "can", "could", "did", "do", "does", "doing", "for", "from",
    "get", "got", "had", "has", "have", "having", "he", "her", "here", "hi", "hello", "hey", "him",
    "his", "how", "i", "if", "in", "into", "is", "it", "its", "just", "me", "my", "need", "no",
    "not", "now", "of", "on", "or", "our", "out", "please", "so", "some", "than", "thanks",
    "thank", "that", "the", "their", "them", "then", "there", "these", "they", "this", "to", "too",
    "up", "us", "use", "using", "very", "want", "was", "we", "were", "what", "when", "where",
    "which", "who", "why", "will", "with", "would", "you", "your", "yours", "im", "ive", "dont",
    "cant", "doesnt", "isnt", "wont", "should", "there", "way", "also",
];

/// The lower-case words of `text`, in order (letters and digits; apostrophes are
/// dropped, so "can't" is "cant").
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .map(|w| w.replace('\'', "").to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

pub fn stem(word: &str) -> String {
    STEMMER.stem(&word.to_lowercase()).into_owned()
}

pub fn is_stop_word(word: &str) -> bool {
    STOP_WORDS.contains(&word)
}

/// The distinct stems of the content words of `text`, in order of appearance.
pub fn terms(text: &str) -> Vec<String> {
    let mut terms: Vec<String> = Vec::new();
    for word in words(text) {
        if is_stop_word(&word) || word.len() < 2 {
            continue;
        }
        let stem = stem(&word);
        if !terms.contains(&stem) {
            terms.push(stem);
        }
    }
    terms
}

/// Where the stemmed `phrase` (one or more words) occurs in `text` as whole words;
/// the matched words of `text` as written, if it does.
pub fn find_phrase(text: &str, phrase: &str) -> Option<String> {
    let wanted: Vec<String> = words(phrase).iter().map(|w| stem(w)).collect();
    if wanted.is_empty() {
        return None;
    }
    let original: Vec<&str> = text
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .collect();
    let stems: Vec<String> = original
        .iter()
        .map(|w| stem(&w.replace('\'', "")))
        .collect();
    stems
        .windows(wanted.len())
        .position(|window| window == wanted.as_slice())
        .map(|at| original[at..at + wanted.len()].join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inflections_share_a_stem() {
        assert_eq!(stem("uploads"), stem("upload"));
        assert_eq!(stem("uploading"), stem("upload"));
        assert_eq!(stem("scheduled"), stem("scheduling"));
    }

    #[test]
    fn terms_skip_stop_words_and_repeats() {
        assert_eq!(
            terms("How do I upload images? Uploading images fails"),
            ["upload", "imag", "fail"]
        );
    }

    #[test]
    fn phrases_match_whole_words_with_stemming() {
        assert_eq!(
            find_phrase("My uploads keep failing", "upload").as_deref(),
            Some("uploads")
        );
        assert_eq!(
            find_phrase("Can I talk to a human?", "talk to a human").as_deref(),
            Some("talk to a human")
        );
        assert_eq!(find_phrase("the agency called", "agent"), None);
        assert_eq!(find_phrase("reuploaded", "upload"), None);
    }
}
