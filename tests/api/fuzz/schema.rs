//! The schema as the generators walk it, read from the checked-in `schema.graphql`
//! with async-graphql's own parser (re-exported as `async_graphql::parser`), so a
//! field added to the API is fuzzed without touching the test.

use std::collections::HashMap;

use async_graphql::parser::types::{BaseType, Type, TypeKind, TypeSystemDefinition};

pub struct Field {
    pub name: String,
    pub args: Vec<Input>,
    pub ty: Type,
}

/// An argument, or a field of an input object.
pub struct Input {
    pub name: String,
    pub ty: Type,
    pub has_default: bool,
}

impl Input {
    /// Whether a valid document must give it.
    pub fn required(&self) -> bool {
        !self.ty.nullable && !self.has_default
    }
}

pub enum Kind {
    Scalar,
    Enum(Vec<String>),
    /// An object or an interface: its fields, and the objects that are it.
    Object {
        fields: Vec<Field>,
        implementors: Vec<String>,
    },
    Union(Vec<String>),
    Input(Vec<Input>),
}

pub struct Schema {
    pub types: HashMap<String, Kind>,
    pub query: String,
    pub mutation: String,
    pub subscription: String,
}

impl Schema {
    pub fn parse(sdl: &str) -> Schema {
        let doc = async_graphql::parser::parse_schema(sdl).expect("schema.graphql parses");
        let mut types = HashMap::new();
        let mut implements: Vec<(String, String)> = Vec::new();
        let (mut query, mut mutation, mut subscription) = (None, None, None);
        for definition in doc.definitions {
            match definition {
                TypeSystemDefinition::Schema(schema) => {
                    let schema = schema.node;
                    query = schema.query.map(|n| n.node.to_string());
                    mutation = schema.mutation.map(|n| n.node.to_string());
                    subscription = schema.subscription.map(|n| n.node.to_string());
                }
                TypeSystemDefinition::Type(ty) => {
                    let ty = ty.node;
                    let name = ty.name.node.to_string();
                    let kind = match ty.kind {
                        TypeKind::Scalar => Kind::Scalar,
                        TypeKind::Enum(e) => Kind::Enum(
                            e.values
                                .iter()
                                .map(|v| v.node.value.node.to_string())
                                .collect(),
                        ),
                        TypeKind::Object(o) => {
                            for interface in &o.implements {
                                implements.push((interface.node.to_string(), name.clone()));
                            }
                            Kind::Object {
                                fields: o.fields.into_iter().map(|f| field(f.node)).collect(),
                                implementors: Vec::new(),
                            }
                        }
                        TypeKind::Interface(i) => Kind::Object {
                            fields: i.fields.into_iter().map(|f| field(f.node)).collect(),
                            implementors: Vec::new(),
                        },
                        TypeKind::Union(u) => {
                            Kind::Union(u.members.iter().map(|m| m.node.to_string()).collect())
                        }
                        TypeKind::InputObject(i) => {
                            Kind::Input(i.fields.into_iter().map(|f| input(f.node)).collect())
                        }
                    };
                    types.insert(name, kind);
                }
                TypeSystemDefinition::Directive(_) => {}
            }
        }
        for (interface, object) in implements {
            if let Some(Kind::Object { implementors, .. }) = types.get_mut(&interface) {
                implementors.push(object);
            }
        }
        for scalar in ["ID", "String", "Int", "Float", "Boolean"] {
            types.insert(scalar.to_owned(), Kind::Scalar);
        }
        Schema {
            types,
            query: query.unwrap_or_else(|| "Query".to_owned()),
            mutation: mutation.unwrap_or_else(|| "Mutation".to_owned()),
            subscription: subscription.expect("the schema has subscriptions"),
        }
    }

    pub fn kind(&self, name: &str) -> &Kind {
        self.types
            .get(name)
            .unwrap_or_else(|| panic!("type {name} is in the schema"))
    }

    pub fn fields(&self, name: &str) -> &[Field] {
        match self.kind(name) {
            Kind::Object { fields, .. } => fields,
            _ => &[],
        }
    }

    /// Whether a field of this type needs a selection set.
    pub fn is_composite(&self, ty: &Type) -> bool {
        matches!(self.kind(named(ty)), Kind::Object { .. } | Kind::Union(_))
    }
}

/// The named type under a type's lists and `!`s.
pub fn named(ty: &Type) -> &str {
    match &ty.base {
        BaseType::Named(name) => name.as_str(),
        BaseType::List(inner) => named(inner),
    }
}

fn field(f: async_graphql::parser::types::FieldDefinition) -> Field {
    Field {
        name: f.name.node.to_string(),
        args: f.arguments.into_iter().map(|a| input(a.node)).collect(),
        ty: f.ty.node,
    }
}

fn input(i: async_graphql::parser::types::InputValueDefinition) -> Input {
    Input {
        name: i.name.node.to_string(),
        ty: i.ty.node,
        has_default: i.default_value.is_some(),
    }
}
