//! Which document comes next, and the documents broken as text rather than through
//! the schema: cut short, nested thousands deep, or not GraphQL at all.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::generate::{Document, Gen, Kind, Operation, Targets, odd_string};
use super::schema::Schema;

const BROKEN: [Kind; 10] = [
    Kind::WrongTypes,
    Kind::HugeNumbers,
    Kind::DeepNesting,
    Kind::OddUnicode,
    Kind::DuplicateDirectives,
    Kind::DuplicateFields,
    Kind::UnknownFields,
    Kind::Truncated,
    Kind::WrongVariables,
    Kind::Garbage,
];

/// The document `index` of the run seeded with `seed`: the same pair always
/// gives the same document, whatever ran before.
pub fn document(schema: &Schema, targets: &Targets, seed: u64, index: usize) -> Document {
    let mut rng = StdRng::seed_from_u64(seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let kind = if rng.gen_bool(0.45) {
        Kind::Valid
    } else {
        *BROKEN.choose(&mut rng).expect("kinds")
    };
    let operation = match rng.gen_range(0..100) {
        0..60 => Operation::Query,
        60..88 => Operation::Mutation,
        _ => Operation::Subscription,
    };
    match kind {
        Kind::Truncated => {
            let mut doc = Gen::new(schema, rng.clone(), targets, Kind::Valid).document(operation);
            let cut = rng.gen_range(0..doc.query.len().max(1));
            let cut = (0..=cut)
                .rev()
                .find(|&at| doc.query.is_char_boundary(at))
                .unwrap_or(0);
            doc.query.truncate(cut);
            doc.kind = Kind::Truncated;
            doc
        }
        Kind::Garbage => garbage(&mut rng, operation),
        Kind::DeepNesting if rng.gen_ratio(1, 3) => deep_text(&mut rng, operation),
        _ => Gen::new(schema, rng, targets, kind).document(operation),
    }
}

/// Nesting far past any limit, as text: selections, list values or object values
/// thousands deep (under the 256 KiB body limit).
fn deep_text(rng: &mut StdRng, operation: Operation) -> Document {
    let depth = *[64, 65, 500, 5_000, 30_000].choose(rng).expect("depths");
    let query = match rng.gen_range(0..3) {
        0 => format!("{{{}{}", " viewer {".repeat(depth), " id }".repeat(depth)),
        1 => format!(
            "{{ articles(query: {}\"x\"{}) {{ totalCount }} }}",
            "[".repeat(depth),
            "]".repeat(depth)
        ),
        _ => format!(
            "{{ leads(filter: {}1{}) {{ totalCount }} }}",
            "{a: ".repeat(depth),
            "}".repeat(depth)
        ),
    };
    Document {
        kind: Kind::DeepNesting,
        operation,
        query,
        variables: "{}".to_owned(),
    }
}

/// Text that is not a usable GraphQL document.
fn garbage(rng: &mut StdRng, operation: Operation) -> Document {
    let query = match rng.gen_range(0..12) {
        0 => String::new(),
        1 => "# only a comment".to_owned(),
        2 => "{ viewer { id } } { workspace { id } }".to_owned(),
        3 => "query A { viewer { id } } query B { workspace { id } }".to_owned(),
        4 => "subscription { messages(conversationId: \"x\") { id } inbox { kind } }".to_owned(),
        5 => "fragment F on Agent { ...F } { viewer { ...F } }".to_owned(),
        6 => "{ viewer { id } } fragment Unused on Agent { id }".to_owned(),
        7 => (0..rng.gen_range(1..400))
            .map(|_| *['{', '}', '(', ')', '$', '@', '!', ':', '[', ']', '"', '.', 'a'].choose(rng).expect("tokens"))
            .collect(),
        8 => format!("{{ {} }}", odd_string(rng)),
        9 => "{ \u{202E}viewer { id } }".to_owned(),
        10 => "mutation { signIn(email: \"a@b.c\", password: \"x\") { token } signIn(email: \"a@b.c\", password: \"y\") { token } }".to_owned(),
        _ => "query($a: Int = \"x\", $a: Int) @include(if: true) { viewer @skip(if: $a) { id } }".to_owned(),
    };
    let variables = match rng.gen_range(0..6) {
        0 => "null".to_owned(),
        1 => "[]".to_owned(),
        2 => "\"text\"".to_owned(),
        _ => "{}".to_owned(),
    };
    Document {
        kind: Kind::Garbage,
        operation,
        query,
        variables,
    }
}
