//! Principals and their credentials: JWTs for agents and visitors, password hashes.
//!
//! Each token kind has its own audience (`casefile:agent`, `casefile:visitor`), so a
//! visitor token can never pass where an agent is required: the audience decides the
//! [`Principal`] variant, and guards match on the variant. Only HS256 is accepted, so
//! `alg: none` and algorithm-swapped tokens fail verification.

pub mod keys;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::entity::{ResolvedBy, Role};
use crate::error::{AppError, AppResult};

const AGENT_AUDIENCE: &str = "casefile:agent";
const VISITOR_AUDIENCE: &str = "casefile:visitor";

/// Who is making a request.
#[derive(Clone, Debug)]
pub enum Principal {
    Agent(AgentPrincipal),
    Visitor(VisitorPrincipal),
    /// An integrator's API key (`ck_…`); with `AI_WRITE`, the AI principal.
    ApiKey(ApiKeyPrincipal),
}

pub use crate::entity::Scope;

/// Who made a change: an agent, or an API key (by id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Editor {
    Agent(String),
    ApiKey(String),
}

#[derive(Clone, Debug)]
pub struct ApiKeyPrincipal {
    pub key_id: String,
    pub workspace_id: String,
    pub scopes: Vec<Scope>,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::InsightsRead => "INSIGHTS_READ",
            Scope::LeadsRead => "LEADS_READ",
            Scope::ConversationsRead => "CONVERSATIONS_READ",
            Scope::AiWrite => "AI_WRITE",
            Scope::EventsRead => "EVENTS_READ",
            Scope::KnowledgeWrite => "KNOWLEDGE_WRITE",
        }
    }
}

impl ApiKeyPrincipal {
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
}

#[derive(Clone, Debug)]
pub struct AgentPrincipal {
    pub agent_id: String,
    pub workspace_id: String,
    /// The agent's role now (read again at each request, not trusted from the token).
    pub role: Role,
    /// The token generation the token was issued in.
    pub generation: i32,
    /// Expiry, seconds since the epoch.
    pub expires_at: i64,
}

/// A website visitor, scoped to the one conversation its token was issued for.
#[derive(Clone, Debug)]
pub struct VisitorPrincipal {
    pub visitor_id: String,
    pub workspace_id: String,
    pub conversation_id: String,
    pub expires_at: i64,
}

impl Principal {
    pub fn workspace_id(&self) -> &str {
        match self {
            Principal::Agent(agent) => &agent.workspace_id,
            Principal::Visitor(visitor) => &visitor.workspace_id,
            Principal::ApiKey(key) => &key.workspace_id,
        }
    }

    /// Expiry, seconds since the epoch; API keys do not expire (they are revoked).
    pub fn expires_at(&self) -> Option<i64> {
        match self {
            Principal::Agent(agent) => Some(agent.expires_at),
            Principal::Visitor(visitor) => Some(visitor.expires_at),
            Principal::ApiKey(_) => None,
        }
    }

    /// Agents may do everything `scope` allows; API keys need the scope.
    pub fn require(&self, scope: Scope) -> AppResult<()> {
        match self {
            Principal::Agent(_) => Ok(()),
            Principal::ApiKey(key) if key.has(scope) => Ok(()),
            Principal::ApiKey(_) => Err(AppError::forbidden(format!(
                "this API key lacks the {} scope",
                scope.as_str()
            ))),
            Principal::Visitor(_) => Err(AppError::forbidden("visitors cannot do this")),
        }
    }

    /// Agents, and API keys that read conversations (`CONVERSATIONS_READ`, or
    /// `AI_WRITE` for the conversations the AI answers).
    pub fn reads_conversations(&self) -> AppResult<()> {
        match self {
            Principal::ApiKey(key) if key.has(Scope::AiWrite) => Ok(()),
            other => other.require(Scope::ConversationsRead),
        }
    }

    /// The visitor behind this request, if a visitor made it.
    pub fn visitor(&self) -> Option<&VisitorPrincipal> {
        match self {
            Principal::Visitor(visitor) => Some(visitor),
            _ => None,
        }
    }

    /// The AI principal (an API key with `AI_WRITE`).
    pub fn is_ai(&self) -> bool {
        matches!(self, Principal::ApiKey(key) if key.has(Scope::AiWrite))
    }

    /// The agent behind this request, or `FORBIDDEN` for any other principal.
    pub fn agent(&self) -> AppResult<&AgentPrincipal> {
        match self {
            Principal::Agent(agent) => Ok(agent),
            _ => Err(AppError::forbidden("this operation needs an agent token")),
        }
    }

    /// Who edits the knowledge base: an owner or admin, or an API key with
    /// `KNOWLEDGE_WRITE`; `FORBIDDEN` for anyone else.
    pub fn knowledge_editor(&self) -> AppResult<Editor> {
        match self {
            Principal::ApiKey(key) => {
                self.require(Scope::KnowledgeWrite)?;
                Ok(Editor::ApiKey(key.key_id.clone()))
            }
            _ => Ok(Editor::Agent(self.admin()?.agent_id.clone())),
        }
    }

    /// Who may export a person's data: an owner or admin, or an API key with both
    /// `LEADS_READ` and `CONVERSATIONS_READ`; `FORBIDDEN` for anyone else.
    pub fn exports_contacts(&self) -> AppResult<()> {
        match self {
            Principal::ApiKey(_) => {
                self.require(Scope::LeadsRead)?;
                self.require(Scope::ConversationsRead)
            }
            _ => self.admin().map(|_| ()),
        }
    }

    /// An owner or admin, or `FORBIDDEN`.
    pub fn admin(&self) -> AppResult<&AgentPrincipal> {
        let agent = self.agent()?;
        if agent.role.manages_workspace() {
            Ok(agent)
        } else {
            Err(AppError::forbidden("only owners and admins can do this"))
        }
    }

    /// Whether this principal may see internal notes: agents, and keys that read
    /// conversations, unless they are the AI's (an `AI_WRITE` key never sees a note,
    /// whatever else it may do).
    pub fn sees_internal(&self) -> bool {
        match self {
            Principal::Agent(_) => true,
            Principal::ApiKey(key) => key.has(Scope::ConversationsRead) && !key.has(Scope::AiWrite),
            Principal::Visitor(_) => false,
        }
    }

    /// Whether this principal may see lead details (name, email, fields): agents,
    /// keys with `LEADS_READ`, and a visitor (its own, the only conversation it
    /// reaches).
    pub fn sees_leads(&self) -> bool {
        match self {
            Principal::Agent(_) | Principal::Visitor(_) => true,
            Principal::ApiKey(key) => key.has(Scope::LeadsRead),
        }
    }

    /// Whether this principal may run mutations at all: agents, visitors (in their
    /// own conversation), the AI (`AI_WRITE`, writing as the AI), and docs
    /// pipelines (`KNOWLEDGE_WRITE`, writing articles alone: each mutation checks
    /// its own scope). Keys that only read never write.
    pub fn may_write(&self) -> AppResult<()> {
        match self {
            Principal::Agent(_) | Principal::Visitor(_) => Ok(()),
            Principal::ApiKey(key) if key.has(Scope::AiWrite) || key.has(Scope::KnowledgeWrite) => {
                Ok(())
            }
            Principal::ApiKey(_) => Err(AppError::forbidden(
                "this API key only reads: writing needs an agent token, or the AI_WRITE or KNOWLEDGE_WRITE scope",
            )),
        }
    }

    /// Who a `resolveConversation` by this principal is recorded as: an agent, the
    /// visitor (ending its own chat), or the AI (an `AI_WRITE` key, for the
    /// conversations it holds); keys that only read cannot resolve.
    pub fn resolves_as(&self) -> AppResult<ResolvedBy> {
        match self {
            Principal::Agent(_) => Ok(ResolvedBy::Agent),
            Principal::Visitor(_) => Ok(ResolvedBy::Visitor),
            Principal::ApiKey(key) if key.has(Scope::AiWrite) => Ok(ResolvedBy::Ai),
            Principal::ApiKey(_) => Err(AppError::forbidden(
                "this API key only reads: resolving needs an agent token or the AI_WRITE scope",
            )),
        }
    }

    /// `Ok` when this principal may read and write the conversation (already known
    /// to be in the principal's workspace); a visitor's other conversations are
    /// `NOT_FOUND`, as if they did not exist.
    pub fn can_access_conversation(&self, conversation_id: &str) -> AppResult<()> {
        match self {
            Principal::Agent(_) => Ok(()),
            Principal::Visitor(visitor) if visitor.conversation_id == conversation_id => Ok(()),
            Principal::Visitor(_) => Err(AppError::NotFound("conversation")),
            Principal::ApiKey(_) => self.reads_conversations(),
        }
    }
}

fn is_zero(value: &i32) -> bool {
    *value == 0
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    wid: String,
    aud: String,
    exp: i64,
    iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role: Option<String>,
    /// An agent's token generation (see `agent::Model::token_generation`).
    #[serde(default, rename = "gen", skip_serializing_if = "is_zero")]
    generation: i32,
    /// The conversation a visitor token is scoped to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cid: Option<String>,
}

/// Why a token whose key this server does not know is refused (yet: another process
/// may have rotated the keys; see [`keys`]).
pub const UNKNOWN_KEY: &str = "token signing key is unknown";

/// Signs and verifies tokens, with the signing key ring (see [`keys`]).
#[derive(Clone)]
pub struct Tokens(Arc<TokensInner>);

struct TokensInner {
    ring: RwLock<Ring>,
    /// When the ring was last read again for an unknown key (at most once a second).
    reloaded: std::sync::Mutex<Option<std::time::Instant>>,
    validation: Validation,
    agent_ttl: Duration,
    visitor_ttl: Duration,
}

/// The keys in force: the newest signs, all verify.
struct Ring {
    kid: String,
    encoding: EncodingKey,
    decoding: HashMap<String, DecodingKey>,
    /// The oldest key: tokens without a `kid` (signed before keys had ids).
    legacy: DecodingKey,
}

impl Ring {
    fn of(keys: &[keys::Key]) -> Ring {
        let newest = keys.last().expect("a ring has a key");
        let oldest = keys.first().expect("a ring has a key");
        Ring {
            kid: newest.kid.clone(),
            encoding: EncodingKey::from_secret(newest.secret.as_bytes()),
            decoding: keys
                .iter()
                .map(|key| {
                    (
                        key.kid.clone(),
                        DecodingKey::from_secret(key.secret.as_bytes()),
                    )
                })
                .collect(),
            legacy: DecodingKey::from_secret(oldest.secret.as_bytes()),
        }
    }
}

/// A freshly issued token and when it expires.
#[derive(Clone, Debug)]
pub struct IssuedToken {
    pub token: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

impl Tokens {
    /// Tokens signed with the one key `secret`.
    pub fn new(secret: &[u8], agent_ttl: Duration, visitor_ttl: Duration) -> Tokens {
        let key = keys::Key::configured(&String::from_utf8_lossy(secret));
        Tokens::with_keys(&[key], agent_ttl, visitor_ttl)
    }

    /// Tokens signed with the newest of `keys` (which must not be empty).
    pub fn with_keys(keys: &[keys::Key], agent_ttl: Duration, visitor_ttl: Duration) -> Tokens {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AGENT_AUDIENCE, VISITOR_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "aud", "sub"]);
        validation.leeway = 0;
        Tokens(Arc::new(TokensInner {
            ring: RwLock::new(Ring::of(keys)),
            reloaded: Default::default(),
            validation,
            agent_ttl,
            visitor_ttl,
        }))
    }

    /// Use `keys` from now on (read again from the database).
    pub fn set_keys(&self, keys: &[keys::Key]) {
        if keys.is_empty() {
            return;
        }
        *self
            .0
            .ring
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Ring::of(keys);
    }

    fn ring(&self) -> std::sync::RwLockReadGuard<'_, Ring> {
        self.0
            .ring
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether to read the ring again for a token of an unknown key: at most once a
    /// second, so tokens with made-up key ids cannot flood the database.
    pub fn may_reload(&self) -> bool {
        let mut last = self
            .0
            .reloaded
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = std::time::Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < Duration::from_secs(1)) {
            return false;
        }
        *last = Some(now);
        true
    }

    /// An agent's token, of the agent's current token `generation`.
    pub fn issue_agent(
        &self,
        agent_id: &str,
        workspace_id: &str,
        role: Role,
        generation: i32,
    ) -> AppResult<IssuedToken> {
        self.issue(
            Claims {
                sub: agent_id.to_owned(),
                wid: workspace_id.to_owned(),
                aud: AGENT_AUDIENCE.to_owned(),
                role: Some(role.as_str().to_owned()),
                generation,
                cid: None,
                iat: 0,
                exp: 0,
            },
            self.0.agent_ttl,
        )
    }

    pub fn issue_visitor(
        &self,
        visitor_id: &str,
        workspace_id: &str,
        conversation_id: &str,
    ) -> AppResult<IssuedToken> {
        self.issue(
            Claims {
                sub: visitor_id.to_owned(),
                wid: workspace_id.to_owned(),
                aud: VISITOR_AUDIENCE.to_owned(),
                role: None,
                generation: 0,
                cid: Some(conversation_id.to_owned()),
                iat: 0,
                exp: 0,
            },
            self.0.visitor_ttl,
        )
    }

    fn issue(&self, mut claims: Claims, ttl: Duration) -> AppResult<IssuedToken> {
        let now = chrono::Utc::now();
        let expires_at = now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::days(1));
        claims.iat = now.timestamp();
        claims.exp = expires_at.timestamp();
        let ring = self.ring();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(ring.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &ring.encoding)
            .map_err(|err| AppError::internal(format!("signing a token: {err}")))?;
        Ok(IssuedToken { token, expires_at })
    }

    /// The principal a bearer token stands for; any defect is `UNAUTHENTICATED`.
    pub fn verify(&self, token: &str) -> AppResult<Principal> {
        let ring = self.ring();
        let validation = &self.0.validation;
        // Nearly every token is of the newest key: try it first, so the header is
        // read once; only a token of another key has its `kid` looked up.
        let newest = ring.decoding.get(&ring.kid).unwrap_or(&ring.legacy);
        let data = match jsonwebtoken::decode::<Claims>(token, newest, validation) {
            Err(err) if *err.kind() == ErrorKind::InvalidSignature => {
                let kid = jsonwebtoken::decode_header(token)
                    .map_err(|_| AppError::Unauthenticated("token is malformed"))?
                    .kid;
                let key = match &kid {
                    Some(kid) if *kid == ring.kid => return Err(refusal(&err)),
                    Some(kid) => ring
                        .decoding
                        .get(kid)
                        .ok_or(AppError::Unauthenticated(UNKNOWN_KEY))?,
                    None => &ring.legacy,
                };
                jsonwebtoken::decode::<Claims>(token, key, validation)
            }
            decoded => decoded,
        }
        .map_err(|err| refusal(&err))?;
        let claims = data.claims;
        match claims.aud.as_str() {
            AGENT_AUDIENCE => {
                let role = match claims.role.as_deref() {
                    Some("OWNER") => Role::Owner,
                    Some("ADMIN") => Role::Admin,
                    Some("AGENT") => Role::Agent,
                    _ => return Err(AppError::Unauthenticated("token role is not accepted")),
                };
                Ok(Principal::Agent(AgentPrincipal {
                    agent_id: claims.sub,
                    generation: claims.generation,
                    workspace_id: claims.wid,
                    role,
                    expires_at: claims.exp,
                }))
            }
            VISITOR_AUDIENCE => Ok(Principal::Visitor(VisitorPrincipal {
                visitor_id: claims.sub,
                workspace_id: claims.wid,
                conversation_id: claims.cid.ok_or(AppError::Unauthenticated(
                    "visitor token without conversation",
                ))?,
                expires_at: claims.exp,
            })),
            _ => Err(AppError::Unauthenticated("token audience is not accepted")),
        }
    }
}

/// Why a token was refused, for its holder.
fn refusal(err: &jsonwebtoken::errors::Error) -> AppError {
    AppError::Unauthenticated(match err.kind() {
        ErrorKind::ExpiredSignature => "token expired",
        ErrorKind::InvalidSignature => "token signature is invalid",
        ErrorKind::InvalidAlgorithm => "token algorithm is not accepted",
        ErrorKind::InvalidAudience => "token audience is not accepted",
        _ => "token is malformed",
    })
}

/// The token in an `Authorization` header value (`Bearer …`), if any.
pub fn bearer(value: Option<&str>) -> AppResult<Option<&str>> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(|token| Some(token.trim()))
        .ok_or(AppError::Unauthenticated(
            "expected `Authorization: Bearer <token>`",
        ))
}

/// Hash a password with Argon2id (off the async runtime: it is deliberately slow).
pub async fn hash_password(password: String) -> AppResult<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|err| AppError::internal(format!("hashing a password: {err}")))
    })
    .await
    .map_err(|err| AppError::internal(format!("hashing task: {err}")))?
}

/// Whether `password` matches the stored `hash`.
pub async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        Tokens::new(
            b"test-secret",
            Duration::from_secs(60),
            Duration::from_secs(60),
        )
    }

    #[test]
    fn agent_tokens_round_trip() {
        let issued = tokens()
            .issue_agent("agt_1", "ws_1", Role::Admin, 0)
            .expect("issue");
        let Principal::Agent(agent) = tokens().verify(&issued.token).expect("verify") else {
            panic!("expected an agent principal");
        };
        assert_eq!(
            (agent.agent_id.as_str(), agent.role),
            ("agt_1", Role::Admin)
        );
    }

    #[test]
    fn visitor_tokens_are_not_agents() {
        let issued = tokens()
            .issue_visitor("v1", "ws_1", "conv_1")
            .expect("issue");
        let principal = tokens().verify(&issued.token).expect("verify");
        assert!(principal.agent().is_err());
    }

    #[test]
    fn tokens_signed_with_another_secret_are_rejected() {
        let other = Tokens::new(b"other", Duration::from_secs(60), Duration::from_secs(60));
        let issued = other
            .issue_agent("agt_1", "ws_1", Role::Owner, 0)
            .expect("issue");
        assert!(matches!(
            tokens().verify(&issued.token),
            Err(AppError::Unauthenticated(_))
        ));
    }
}
