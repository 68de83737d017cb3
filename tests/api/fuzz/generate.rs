//! Documents from the schema: random root fields, arguments of the declared types
//! (ids of real objects, enums' values, input objects filled recursively), random
//! selections of fields, `__typename`, aliases, directives and fragments. A
//! [`Kind`] other than `Valid` breaks the document at the places it names.

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use super::schema::{self, Field, Input, Schema, named};
use async_graphql::parser::types::{BaseType, Type};

/// What a document is, valid or how it is broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Valid,
    WrongTypes,
    HugeNumbers,
    DeepNesting,
    OddUnicode,
    DuplicateDirectives,
    DuplicateFields,
    UnknownFields,
    Truncated,
    WrongVariables,
    Garbage,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    Query,
    Mutation,
    Subscription,
}

pub struct Document {
    pub kind: Kind,
    pub operation: Operation,
    pub query: String,
    /// The `variables` member as JSON text (so it can hold numbers no JSON library
    /// writes, like `1e400`).
    pub variables: String,
}

/// Ids of one tenant's objects, by the name of what they are (`conversation`,
/// `lead`, …), as argument names and fields mention them.
#[derive(Default)]
pub struct Ids(pub Vec<(&'static str, Vec<String>)>);

impl Ids {
    pub fn add(&mut self, kind: &'static str, id: &str) {
        match self.0.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, ids)) => ids.push(id.to_owned()),
            None => self.0.push((kind, vec![id.to_owned()])),
        }
    }

    /// Ids whose kind the hint names, or every id when it names none.
    fn matching(&self, hint: &str) -> Vec<&String> {
        let hint = hint.to_lowercase();
        let named: Vec<&String> = self
            .0
            .iter()
            .filter(|(kind, _)| hint.contains(kind))
            .flat_map(|(_, ids)| ids)
            .collect();
        if named.is_empty() {
            self.0.iter().flat_map(|(_, ids)| ids).collect()
        } else {
            named
        }
    }
}

/// What a principal's documents may name: its tenant's objects, the other
/// tenant's (cross-tenant reads and writes), and widget keys.
pub struct Targets {
    pub own: Ids,
    pub other: Ids,
    pub widget_keys: [String; 2],
}

/// A value, written as a GraphQL literal or as JSON.
pub enum Val {
    Null,
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    Enum(String),
    List(Vec<Val>),
    Object(Vec<(String, Val)>),
    /// Written as is in both (a number out of every range, a broken escape).
    Raw(String),
}

impl Val {
    pub fn literal(&self) -> String {
        match self {
            Val::Null => "null".to_owned(),
            Val::Int(i) => i.to_string(),
            Val::Float(f) => format!("{f:?}"),
            Val::Str(s) => serde_json::to_string(s).expect("a string serialises"),
            Val::Bool(b) => b.to_string(),
            Val::Enum(e) | Val::Raw(e) => e.clone(),
            Val::List(items) => {
                let items: Vec<String> = items.iter().map(Val::literal).collect();
                format!("[{}]", items.join(", "))
            }
            Val::Object(fields) => {
                let fields: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("{k}: {}", v.literal()))
                    .collect();
                format!("{{{}}}", fields.join(", "))
            }
        }
    }

    pub fn json(&self) -> String {
        match self {
            Val::Enum(e) => serde_json::to_string(e).expect("a string serialises"),
            Val::List(items) => {
                let items: Vec<String> = items.iter().map(Val::json).collect();
                format!("[{}]", items.join(","))
            }
            Val::Object(fields) => {
                let fields: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("{}:{}", Val::Str(k.clone()).literal(), v.json()))
                    .collect();
                format!("{{{}}}", fields.join(","))
            }
            other => other.literal(),
        }
    }
}

/// Root fields chosen one time in twenty: each hashes a password (on purpose
/// slow) or runs the answer engine. No field is left out: none can end a
/// principal the test uses, since the principals' own agent and key ids are never
/// offered as arguments (see `Targets`) and no generated password is right.
const RARE: &[&str] = &["signIn", "changePassword", "previewAnswer"];

pub struct Gen<'a> {
    pub schema: &'a Schema,
    pub rng: StdRng,
    pub targets: &'a Targets,
    pub kind: Kind,
    /// Variables declared so far: name, type, JSON value (none: not sent).
    vars: Vec<(String, String, Option<String>)>,
    fragments: Vec<String>,
    names: usize,
    max_depth: usize,
    /// How many times the document's first field repeats its directives, or its
    /// selection its fields (`DuplicateDirectives`, `DuplicateFields`).
    repeats: usize,
}

impl<'a> Gen<'a> {
    pub fn new(schema: &'a Schema, rng: StdRng, targets: &'a Targets, kind: Kind) -> Gen<'a> {
        Gen {
            schema,
            rng,
            targets,
            kind,
            vars: Vec::new(),
            fragments: Vec::new(),
            names: 0,
            max_depth: 4,
            repeats: 0,
        }
    }

    /// A document of `operation` with one to three root fields.
    pub fn document(&mut self, operation: Operation) -> Document {
        let schema = self.schema;
        let root = match operation {
            Operation::Query => &schema.query,
            Operation::Mutation => &schema.mutation,
            Operation::Subscription => &schema.subscription,
        };
        self.max_depth = match self.kind {
            Kind::DeepNesting => self.rng.gen_range(16..40),
            _ => self.rng.gen_range(2..=5),
        };
        if matches!(self.kind, Kind::DuplicateDirectives | Kind::DuplicateFields) {
            self.repeats = *[2, 10, 100, 500, 2000]
                .choose(&mut self.rng)
                .expect("not empty");
        }
        let candidates: Vec<&Field> = schema
            .fields(root)
            .iter()
            .filter(|f| !RARE.contains(&f.name.as_str()) || self.rng.gen_ratio(1, 20))
            .collect();
        let count = match operation {
            Operation::Query => self.rng.gen_range(1..=3),
            _ if self.rng.gen_ratio(1, 5) => 2,
            _ => 1,
        };
        let mut selections = Vec::new();
        for _ in 0..count {
            let field = *candidates.choose(&mut self.rng).expect("root fields");
            selections.push(self.field(field, 1));
        }
        if self.kind == Kind::UnknownFields {
            let at = self.rng.gen_range(0..=selections.len());
            selections.insert(at, self.unknown());
        }
        let keyword = match operation {
            Operation::Query if self.rng.gen_bool(0.3) && self.vars.is_empty() => "",
            Operation::Query => "query",
            Operation::Mutation => "mutation",
            Operation::Subscription => "subscription",
        };
        let declarations: Vec<String> = self
            .vars
            .iter()
            .map(|(name, ty, _)| format!("${name}: {ty}"))
            .collect();
        let header = if declarations.is_empty() {
            keyword.to_owned()
        } else {
            format!("{keyword} Fuzz({})", declarations.join(", "))
        };
        let mut query = format!("{header} {{ {} }}", selections.join(" "));
        for fragment in &self.fragments {
            query.push('\n');
            query.push_str(fragment);
        }
        let values: Vec<String> = self
            .vars
            .iter()
            .filter_map(|(name, _, value)| {
                let value = value.as_ref()?;
                Some(format!("{}:{value}", Val::Str(name.clone()).literal()))
            })
            .collect();
        Document {
            kind: self.kind,
            operation,
            query,
            variables: format!("{{{}}}", values.join(",")),
        }
    }

    /// `field` of `parent`, with arguments and (for an object) a selection.
    fn field(&mut self, field: &Field, depth: usize) -> String {
        let mut out = String::new();
        if self.rng.gen_ratio(1, 6) {
            out.push_str(&format!("{}: ", self.name("a")));
        }
        out.push_str(&field.name);
        let mut args = Vec::new();
        for arg in &field.args {
            if arg.required() || self.rng.gen_bool(0.5) {
                let value = self.argument(arg, &field.name);
                args.push(format!("{}: {value}", arg.name));
            }
        }
        if !args.is_empty() {
            out.push_str(&format!("({})", args.join(", ")));
        }
        if self.kind == Kind::DuplicateDirectives && self.repeats > 0 {
            let directive = if self.rng.gen_bool(0.5) {
                " @include(if: true)"
            } else {
                " @skip(if: false)"
            };
            out.push_str(&directive.repeat(self.repeats));
            self.repeats = 0;
        } else if self.rng.gen_ratio(1, 12) {
            let b = self.rng.gen_bool(0.8);
            out.push_str(&format!(" @include(if: {b})"));
        }
        if self.schema.is_composite(&field.ty) {
            out.push(' ');
            out.push_str(&self.selection(named(&field.ty), depth + 1));
        } else if self.kind == Kind::UnknownFields && self.rng.gen_ratio(1, 8) {
            out.push_str(" { id }");
        }
        out
    }

    /// A selection set on the object, interface or union `ty`.
    fn selection(&mut self, ty: &str, depth: usize) -> String {
        let schema = self.schema;
        let mut parts = Vec::new();
        match schema.kind(ty) {
            schema::Kind::Union(members) => {
                parts.push("__typename".to_owned());
                for _ in 0..self.rng.gen_range(1..=2) {
                    let member = members.choose(&mut self.rng).expect("members").clone();
                    let inner = self.selection(&member, depth);
                    parts.push(format!("... on {member} {inner}"));
                }
            }
            schema::Kind::Object {
                fields,
                implementors,
            } => {
                let deepen = self.kind == Kind::DeepNesting;
                let leaves: Vec<&Field> = fields
                    .iter()
                    .filter(|f| !schema.is_composite(&f.ty))
                    .collect();
                let objects: Vec<&Field> = fields
                    .iter()
                    .filter(|f| schema.is_composite(&f.ty))
                    .collect();
                if depth >= self.max_depth || (objects.is_empty() && deepen) {
                    match leaves.choose(&mut self.rng) {
                        Some(leaf) => parts.push(self.field(leaf, depth)),
                        None => parts.push("__typename".to_owned()),
                    }
                } else if deepen && !objects.is_empty() {
                    let next = *objects.choose(&mut self.rng).expect("objects");
                    parts.push(self.field(next, depth));
                } else {
                    let count = self.rng.gen_range(1..=3.min(fields.len()));
                    let chosen: Vec<&Field> =
                        fields.choose_multiple(&mut self.rng, count).collect();
                    for field in chosen {
                        parts.push(self.field(field, depth));
                    }
                }
                if self.rng.gen_ratio(1, 6) {
                    parts.push("__typename".to_owned());
                }
                if !implementors.is_empty() && self.rng.gen_bool(0.4) {
                    let object = implementors.choose(&mut self.rng).expect("one").clone();
                    let inner = self.selection(&object, depth);
                    parts.push(format!("... on {object} {inner}"));
                }
                if !deepen && self.rng.gen_ratio(1, 10) {
                    let name = self.name("F");
                    let inner = self.selection(ty, depth);
                    self.fragments
                        .push(format!("fragment {name} on {ty} {inner}"));
                    parts.push(format!("...{name}"));
                }
            }
            _ => parts.push("__typename".to_owned()),
        }
        if self.kind == Kind::DuplicateFields && self.repeats > 0 {
            let copy = parts[0].clone();
            let repeats = std::mem::take(&mut self.repeats);
            for i in 0..repeats {
                // Some copies keep the response name (merged), some clash with
                // different arguments, some are aliased (past the alias limit).
                match i % 3 {
                    0 => parts.push(copy.clone()),
                    1 => parts.push(format!("x{i}: {copy}")),
                    _ => parts.push(format!("{copy} __typename")),
                }
            }
        }
        if self.kind == Kind::UnknownFields && self.rng.gen_ratio(1, 3) {
            parts.push(self.unknown());
        }
        format!("{{ {} }}", parts.join(" "))
    }

    /// A field, argument or fragment the schema does not have.
    fn unknown(&mut self) -> String {
        let n = self.rng.gen_range(0..1000);
        match self.rng.gen_range(0..5) {
            0 => format!("notAField{n}"),
            1 => format!("viewer(bogus{n}: 1) {{ id }}"),
            2 => format!("... on NotAType{n} {{ id }}"),
            3 => format!("...MissingFragment{n}"),
            _ => format!(
                "__type(name: \"Agent\") {{ name fields {{ name }} }} x{n}: __schema {{ queryType {{ name }} }}"
            ),
        }
    }

    /// An argument's value, inline or as a variable.
    fn argument(&mut self, arg: &Input, field: &str) -> String {
        let value = self.value(&arg.ty, &arg.name, field);
        let as_variable = match self.kind {
            Kind::WrongVariables => true,
            Kind::Valid => self.rng.gen_ratio(1, 4),
            _ => self.rng.gen_ratio(1, 8),
        };
        if !as_variable {
            return value.literal();
        }
        let name = self.name("v");
        let declared = if self.kind == Kind::WrongVariables && self.rng.gen_ratio(1, 3) {
            // Declared with another type than the argument's.
            ["Int", "String!", "[ID!]!", "Boolean", "Float!", "DateTime"]
                .choose(&mut self.rng)
                .expect("types")
                .to_string()
        } else {
            arg.ty.to_string()
        };
        let json = if self.kind == Kind::WrongVariables {
            match self.rng.gen_range(0..4) {
                0 => self.wrong(&arg.ty).json(),
                1 => r#"{"nested":{"deeper":[1,2,{"x":null}]}}"#.to_owned(),
                2 => "null".to_owned(),
                _ => value.json(),
            }
        } else {
            value.json()
        };
        if self.kind == Kind::WrongVariables && self.rng.gen_ratio(1, 6) {
            // Used but never declared.
            return format!("$undeclared{}", self.names);
        }
        // Some are declared and never sent.
        let sent = !(self.kind == Kind::WrongVariables && self.rng.gen_ratio(1, 6));
        self.vars
            .push((name.clone(), declared, sent.then_some(json)));
        format!("${name}")
    }

    /// A value of type `ty` for the argument or input field `name` of `field`.
    pub fn value(&mut self, ty: &Type, name: &str, field: &str) -> Val {
        if self.kind == Kind::WrongTypes && self.rng.gen_ratio(1, 3) {
            return self.wrong(ty);
        }
        if ty.nullable && self.rng.gen_ratio(1, 10) {
            return Val::Null;
        }
        match &ty.base {
            BaseType::List(inner) => {
                let n = self.rng.gen_range(0..=3);
                Val::List((0..n).map(|_| self.value(inner, name, field)).collect())
            }
            BaseType::Named(type_name) => self.named_value(type_name.as_str(), name, field),
        }
    }

    fn named_value(&mut self, ty: &str, name: &str, field: &str) -> Val {
        let schema = self.schema;
        match ty {
            "ID" => Val::Str(self.id(name, field)),
            "String" if self.kind == Kind::OddUnicode && self.rng.gen_ratio(1, 3) => {
                Val::Raw(odd_escape(&mut self.rng))
            }
            "String" => Val::Str(self.string(name)),
            "Int" => self.int(name),
            "Float" => match self.kind {
                Kind::HugeNumbers => self.huge(),
                _ => Val::Float(self.rng.gen_range(-1.0..2.0)),
            },
            "Boolean" => Val::Bool(self.rng.gen_bool(0.5)),
            "DateTime" => {
                let days = self.rng.gen_range(-400..30);
                Val::Str((chrono::Utc::now() + chrono::Duration::days(days)).to_rfc3339())
            }
            "Date" => Val::Str(format!("2025-{:02}-{:02}", self.rng.gen_range(1..=12), 1)),
            "JSON" => Val::Object(vec![("k".to_owned(), Val::Str(self.string("value")))]),
            _ => match schema.kind(ty) {
                schema::Kind::Enum(values) => {
                    Val::Enum(values.choose(&mut self.rng).expect("values").clone())
                }
                schema::Kind::Input(fields) => {
                    let mut out = Vec::new();
                    for input in fields {
                        if input.required() || self.rng.gen_bool(0.5) {
                            let value = self.value(&input.ty, &input.name, field);
                            out.push((input.name.clone(), value));
                        }
                    }
                    Val::Object(out)
                }
                _ => Val::Str(self.string(name)),
            },
        }
    }

    /// An id: mostly of the principal's tenant and of the kind the name says, some
    /// of the other tenant, some made up.
    fn id(&mut self, name: &str, field: &str) -> String {
        let hint = match name {
            "id" | "ids" => field,
            "memberIds" => "agent",
            other => other,
        };
        let roll = self.rng.gen_range(0..100);
        let targets = self.targets;
        let pool = if roll < 70 {
            targets.own.matching(hint)
        } else if roll < 85 {
            targets.other.matching(hint)
        } else {
            Vec::new()
        };
        match pool.choose(&mut self.rng) {
            Some(id) => (*id).clone(),
            None => [
                "",
                "0",
                "-1",
                "01J00000000000000000000000",
                "conversation:1",
                "'; DROP TABLE agents; --",
            ]
            .choose(&mut self.rng)
            .expect("ids")
            .to_string(),
        }
    }

    fn string(&mut self, name: &str) -> String {
        if self.kind == Kind::OddUnicode && self.rng.gen_bool(0.5) {
            return odd_string(&mut self.rng);
        }
        let n = self.rng.gen_range(0..100_000);
        let lower = name.to_lowercase();
        if lower.contains("widgetkey") {
            let keys = &self.targets.widget_keys;
            return match self.rng.gen_range(0..10) {
                0..=6 => keys[0].clone(),
                7 | 8 => keys[1].clone(),
                _ => format!("wk_{n}"),
            };
        }
        if lower.contains("email") {
            return format!("fuzz{n}@example.com");
        }
        if lower.contains("url") {
            return format!("https://example.com/page/{n}");
        }
        if lower == "key" {
            return format!("k{n}");
        }
        if lower.contains("timezone") {
            return "Europe/Paris".to_owned();
        }
        if lower.contains("pattern") {
            return ["refund", "(", "a+b*", ".*"]
                .choose(&mut self.rng)
                .expect("patterns")
                .to_string();
        }
        let words = [
            "hello", "refund", "pricing", "help", "order", "", "ça va", "日本",
        ];
        let count = self.rng.gen_range(0..4);
        let mut text: Vec<&str> = Vec::new();
        for _ in 0..count {
            text.push(words.choose(&mut self.rng).expect("words"));
        }
        format!("{} {n}", text.join(" "))
    }

    fn int(&mut self, name: &str) -> Val {
        if self.kind == Kind::HugeNumbers && self.rng.gen_bool(0.7) {
            return self.huge();
        }
        Val::Int(match name {
            // Mostly pages the server serves; now and then one it refuses.
            "first" => *[1, 2, 3, 5, 10, 20, 1, 2, 0, 1000]
                .choose(&mut self.rng)
                .expect("sizes"),
            "score" => self.rng.gen_range(0..=6),
            _ => self.rng.gen_range(-3..40),
        })
    }

    fn huge(&mut self) -> Val {
        Val::Raw(
            [
                "1e309",
                "-1e309",
                "99999999999999999999",
                "-99999999999999999999",
                "2147483648",
                "-2147483649",
                "9223372036854775807",
                "-9223372036854775808",
                "18446744073709551616",
                "1.7976931348623157e308",
                "4.9e-324",
                "0.000000000000000000000000000001",
                "1e2147483648",
            ]
            .choose(&mut self.rng)
            .expect("numbers")
            .to_string(),
        )
    }

    /// A value of another type than `ty`.
    fn wrong(&mut self, ty: &Type) -> Val {
        let scalar = named(ty);
        let choices: Vec<Val> = vec![
            Val::Str("not the type".to_owned()),
            Val::Int(42),
            Val::Float(1.5),
            Val::Bool(true),
            Val::Enum("NOT_A_VALUE".to_owned()),
            Val::Null,
            Val::List(vec![Val::Int(1), Val::Str("x".to_owned())]),
            Val::Object(vec![("unknown".to_owned(), Val::Int(1))]),
        ];
        let mut choices: Vec<Val> = choices
            .into_iter()
            .filter(|v| {
                !matches!(
                    (v, scalar),
                    (Val::Str(_), "String" | "ID")
                        | (Val::Int(_), "Int" | "Float" | "ID")
                        | (Val::Bool(_), "Boolean")
                        | (Val::Float(_), "Float")
                )
            })
            .collect();
        let at = self.rng.gen_range(0..choices.len());
        choices.swap_remove(at)
    }

    fn name(&mut self, prefix: &str) -> String {
        self.names += 1;
        format!("{prefix}{}", self.names)
    }
}

/// A string no form expects: bidirectional controls, escaped NULs and lone
/// surrogates, emoji and combining marks, or 10,000 characters.
pub fn odd_string(rng: &mut StdRng) -> String {
    let samples = [
        "\u{202E}gnp.exe\u{202C}",
        "\u{200F}\u{200E}\u{2066}rtl\u{2069}",
        "\u{0000}nul\u{0000}",
        "e\u{0301}\u{0302}\u{0303}\u{0304}\u{0305}",
        "👩‍👩‍👧‍👦🏳️‍🌈🇫🇷",
        "\u{FEFF}bom",
        "\u{FFFF}\u{FFFE}",
        "Z̸̢̛̪̳a̷̡͎l̷̨͔g̸̻̈o̶̙͝",
        "\r\n\t\u{000B}\u{000C}",
        "<script>alert(1)</script>",
        "%s%n%x{0}",
    ];
    match rng.gen_range(0..6) {
        0 => "é".repeat(rng.gen_range(5_000..=10_000)),
        1 => "a".repeat(10_001),
        _ => (*samples.choose(rng).expect("samples")).to_owned(),
    }
}

/// A string literal whose escapes are odd: lone surrogates, NULs, braces escapes,
/// an escape that does not exist, no closing quote.
fn odd_escape(rng: &mut StdRng) -> String {
    [
        r#""\ud800""#,
        r#""\udfff\ud800x""#,
        r#""\ud83d\ude00""#,
        r#""\u0000\u0000""#,
        r#""\u{1F600}""#,
        r#""\u{110000}""#,
        r#""\x41""#,
        r#""\uZZZZ""#,
        r#""unterminated"#,
        r#""""block \ud800 string""""#,
    ]
    .choose(rng)
    .expect("escapes")
    .to_string()
}
