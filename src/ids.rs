//! Opaque, prefixed, time-ordered identifiers (`conv_01J…`).
//!
//! The prefix names the kind of object, so `node(id:)` can route an id without a
//! lookup; the body is a ULID from one monotonic generator, so ids sort by creation
//! time even within one millisecond, which keyset pagination relies on.

use std::sync::Mutex;

use ulid::Generator;

static GENERATOR: Mutex<Option<Generator>> = Mutex::new(None);

/// The kinds of object that have an id, with their prefixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Workspace,
    Agent,
    Team,
    Lead,
    LeadField,
    Conversation,
    Message,
    Tag,
    Handoff,
    Article,
    ApiKey,
    Job,
    Event,
    Webhook,
    Delivery,
    Feedback,
    Flag,
    ModelCall,
    Revision,
    Passage,
    Audit,
}

impl Kind {
    const ALL: [Kind; 21] = [
        Kind::Workspace,
        Kind::Agent,
        Kind::Team,
        Kind::Lead,
        Kind::LeadField,
        Kind::Conversation,
        Kind::Message,
        Kind::Tag,
        Kind::Handoff,
        Kind::Article,
        Kind::ApiKey,
        Kind::Job,
        Kind::Event,
        Kind::Webhook,
        Kind::Delivery,
        Kind::Feedback,
        Kind::Flag,
        Kind::ModelCall,
        Kind::Revision,
        Kind::Passage,
        Kind::Audit,
    ];

    pub fn prefix(self) -> &'static str {
        match self {
            Kind::Workspace => "ws",
            Kind::Agent => "agt",
            Kind::Team => "team",
            Kind::Lead => "lead",
            Kind::LeadField => "lfld",
            Kind::Conversation => "conv",
            Kind::Message => "msg",
            Kind::Tag => "tag",
            Kind::Handoff => "hof",
            Kind::Article => "art",
            Kind::ApiKey => "key",
            Kind::Job => "job",
            Kind::Event => "evt",
            Kind::Webhook => "whk",
            Kind::Delivery => "whd",
            Kind::Feedback => "fbk",
            Kind::Flag => "flg",
            Kind::ModelCall => "mdl",
            Kind::Revision => "rev",
            Kind::Passage => "psg",
            Kind::Audit => "aud",
        }
    }

    /// The kind an id claims by its prefix, if it is well formed.
    pub fn of(id: &str) -> Option<Kind> {
        let (prefix, body) = id.split_once('_')?;
        if body.len() != 26 || ulid::Ulid::from_string(body).is_err() {
            return None;
        }
        Kind::ALL.into_iter().find(|kind| kind.prefix() == prefix)
    }
}

/// A new id of the given kind, later than every id made before it in this process.
pub fn new_id(kind: Kind) -> String {
    let mut slot = GENERATOR
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let generator = slot.get_or_insert_with(Generator::new);
    // The generator fails only when 2^80 ids are made in one millisecond; a fresh
    // random ULID is then still unique, just not ordered within that millisecond.
    let ulid = generator.generate().unwrap_or_else(|_| ulid::Ulid::new());
    format!("{}_{}", kind.prefix(), ulid)
}

/// A random secret of `bytes` bytes, URL-safe base64 without padding.
pub fn random_secret(bytes: usize) -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_kind_and_sort_by_creation() {
        let first = new_id(Kind::Conversation);
        let second = new_id(Kind::Conversation);
        assert!(first.starts_with("conv_"));
        assert!(first < second, "{first} should sort before {second}");
        assert_eq!(Kind::of(&first), Some(Kind::Conversation));
    }

    #[test]
    fn malformed_ids_have_no_kind() {
        assert_eq!(Kind::of("conv_123"), None);
        assert_eq!(Kind::of("nope_01ARZ3NDEKTSV4RRFFQ69G5FAV"), None);
        assert_eq!(Kind::of("01ARZ3NDEKTSV4RRFFQ69G5FAV"), None);
    }
}
