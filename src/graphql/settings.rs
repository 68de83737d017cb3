//! Workspace settings: the handoff policy, the built-in responder, the default team,
//! and integrators' API keys.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, SimpleObject};

use crate::auth::Scope;
use crate::domain;
use crate::domain::handoff::policy::HandoffPolicy;
use crate::entity::{AnswerEngine, api_key};

use super::workspaces::Workspace;
use super::{ContextExt, timestamp};

/// When the AI hands a conversation to humans.
pub struct HandoffPolicyView(pub HandoffPolicy);

#[Object(name = "HandoffPolicy")]
impl HandoffPolicyView {
    /// Answers below this confidence (0..1) count as unsure.
    async fn confidence_threshold(&self) -> f64 {
        self.0.confidence_threshold
    }

    /// How many unsure answers the AI may give (asking the visitor to rephrase)
    /// before it hands off with `LOW_CONFIDENCE`; 0 hands off at the first.
    async fn max_low_confidence_answers(&self) -> i32 {
        self.0.max_low_confidence_answers as i32
    }

    /// How many answers the AI may give; when the visitor writes again after that
    /// many, the conversation is handed off as `UNRESOLVED`.
    async fn max_ai_attempts(&self) -> i32 {
        self.0.max_ai_attempts as i32
    }

    /// Phrases that mean "I want a person" (`VISITOR_REQUESTED`), matched as whole
    /// words with stemming, in several languages by default.
    async fn handoff_phrases(&self) -> &[String] {
        &self.0.handoff_phrases
    }

    /// Tags that always go to humans (`POLICY`), besides tags marked `escalate`.
    async fn escalate_tag_ids(&self) -> Vec<ID> {
        self.0.escalate_tag_ids.iter().cloned().map(ID).collect()
    }

    /// Whether a handoff asks the visitor for an email address when none is known.
    async fn ask_for_email(&self) -> bool {
        self.0.ask_for_email
    }

    /// How many AI answers the visitor may call unhelpful (`confirmAnswer` with
    /// `helpful: false`) since the AI took control before the conversation is
    /// handed off as `UNRESOLVED`; 0 never hands off for it.
    async fn max_unhelpful_answers(&self) -> i32 {
        self.0.max_unhelpful_answers as i32
    }

    /// A conversation the AI holds whose visitor has been silent this many seconds
    /// is resolved (`resolvedBy: AUTO`, with a `SYSTEM` message); `null` never.
    async fn auto_resolve_after_seconds(&self) -> Option<i32> {
        self.0
            .auto_resolve_after_seconds
            .map(|s| i32::try_from(s).unwrap_or(i32::MAX))
    }
}

/// Changes to the handoff policy; absent fields stay as they are.
#[derive(InputObject, Default)]
pub struct HandoffPolicyInput {
    pub confidence_threshold: Option<f64>,
    pub max_low_confidence_answers: Option<i32>,
    pub max_ai_attempts: Option<i32>,
    pub handoff_phrases: Option<Vec<String>>,
    pub escalate_tag_ids: Option<Vec<ID>>,
    pub ask_for_email: Option<bool>,
    pub max_unhelpful_answers: Option<i32>,
    /// Seconds, 1 to 30 days; `null` never resolves silent AI conversations.
    pub auto_resolve_after_seconds: MaybeUndefined<i32>,
}

#[derive(InputObject, Default)]
pub struct UpdateWorkspaceInput {
    pub name: Option<String>,
    /// Turn the built-in AI on or off (off: post AI answers from your own model
    /// with an `AI_WRITE` key).
    #[graphql(deprecation = "Use `answerEngine` (`false` here is `OFF`).")]
    pub responder_enabled: Option<bool>,
    /// Where the AI's answers come from. `MODEL` needs a model configured on the
    /// server (`CASEFILE_LLM_URL`).
    pub answer_engine: Option<AnswerEngine>,
    /// Tone and house rules for the model ("answer in the visitor's language",
    /// "never promise refunds"), at most 4,000 characters; empty clears them.
    pub answer_instructions: Option<String>,
    /// Model tokens the workspace may use per UTC day (at least 1); `null`: no
    /// limit.
    pub model_daily_token_limit: MaybeUndefined<i64>,
    /// The team handoffs go to when no tag routes them.
    pub default_team_id: Option<ID>,
    /// Talk only with signed-in visitors: `startConversation` needs a valid
    /// `identityToken`.
    pub require_verified_identity: Option<bool>,
    /// Erase conversations resolved more than this many days ago (1 to 3,650), the
    /// way `eraseContact` does, and their leads once none of their conversations
    /// is left; `null`: keep them until erased by hand (the default).
    pub retention_days: MaybeUndefined<i32>,
}

/// An integrator's API key. Its secret is shown once, when created.
pub struct ApiKey(pub api_key::Model);

#[Object]
impl ApiKey {
    pub async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    pub async fn name(&self) -> &str {
        &self.0.name
    }

    async fn scopes(&self) -> async_graphql::Result<Vec<Scope>> {
        Ok(self.0.scopes()?)
    }

    async fn created_at(&self) -> chrono::DateTime<chrono::Utc> {
        timestamp(self.0.created_at)
    }

    async fn revoked_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.0.revoked_at.map(timestamp)
    }
}

#[derive(SimpleObject)]
pub struct CreateApiKeyPayload {
    pub api_key: ApiKey,
    /// Send as `Authorization: Bearer ck_…`. Shown only now: Casefile keeps a hash.
    pub secret: String,
}

#[derive(Default)]
pub struct SettingsQuery;

#[Object]
impl SettingsQuery {
    /// The workspace's API keys. Owners and admins only.
    async fn api_keys(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ApiKey>> {
        let admin = ctx.principal()?.admin()?;
        let keys = domain::tenancy::api_keys::list(ctx.core(), &admin.workspace_id).await?;
        Ok(keys.into_iter().map(ApiKey).collect())
    }
}

#[derive(Default)]
pub struct SettingsMutation;

#[Object]
impl SettingsMutation {
    /// Change the handoff policy. Owners and admins only.
    async fn update_handoff_policy(
        &self,
        ctx: &Context<'_>,
        input: HandoffPolicyInput,
    ) -> async_graphql::Result<HandoffPolicyView> {
        let admin = ctx.principal()?.admin()?;
        let change = domain::handoff::policy::PolicyChange {
            confidence_threshold: input.confidence_threshold,
            max_low_confidence_answers: input.max_low_confidence_answers,
            max_ai_attempts: input.max_ai_attempts,
            handoff_phrases: input.handoff_phrases,
            escalate_tag_ids: input
                .escalate_tag_ids
                .map(|ids| ids.into_iter().map(|id| id.0).collect()),
            ask_for_email: input.ask_for_email,
            max_unhelpful_answers: input.max_unhelpful_answers,
            auto_resolve_after_seconds: match input.auto_resolve_after_seconds {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(seconds) => Some(Some(seconds)),
            },
        };
        let policy =
            domain::handoff::policy::update(ctx.core(), admin, ctx.client_ip(), change).await?;
        Ok(HandoffPolicyView(policy))
    }

    /// Change workspace settings. Owners and admins only.
    async fn update_workspace(
        &self,
        ctx: &Context<'_>,
        input: UpdateWorkspaceInput,
    ) -> async_graphql::Result<Workspace> {
        let admin = ctx.principal()?.admin()?;
        let change = domain::tenancy::workspaces::WorkspaceChange {
            name: input.name,
            answer_engine: input.answer_engine,
            responder_enabled: input.responder_enabled,
            answer_instructions: input.answer_instructions,
            model_daily_token_limit: match input.model_daily_token_limit {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(limit) => Some(Some(limit)),
            },
            default_team_id: input.default_team_id.map(|id| id.0),
            require_verified_identity: input.require_verified_identity,
            retention_days: match input.retention_days {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(days) => Some(Some(days)),
            },
        };
        let workspace =
            domain::tenancy::workspaces::update(ctx.core(), admin, ctx.client_ip(), change).await?;
        Ok(Workspace(workspace))
    }

    /// Make a new secret for identity verification and return it, this once (the
    /// previous one stops verifying). Your backend signs visitors' identities with it;
    /// see `StartConversationInput.identityToken`. Owners and admins only.
    async fn rotate_identity_secret(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        let admin = ctx.principal()?.admin()?;
        Ok(domain::tenancy::identity::rotate_secret(ctx.core(), admin, ctx.client_ip()).await?)
    }

    /// Create an API key with the given scopes. Owners and admins only.
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        name: String,
        scopes: Vec<Scope>,
    ) -> async_graphql::Result<CreateApiKeyPayload> {
        let admin = ctx.principal()?.admin()?;
        let (key, secret) =
            domain::tenancy::api_keys::create(ctx.core(), admin, ctx.client_ip(), &name, &scopes)
                .await?;
        Ok(CreateApiKeyPayload {
            api_key: ApiKey(key),
            secret,
        })
    }

    /// Revoke an API key: it stops working at once. Owners and admins only.
    async fn revoke_api_key(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ApiKey> {
        let admin = ctx.principal()?.admin()?;
        Ok(ApiKey(
            domain::tenancy::api_keys::revoke(ctx.core(), admin, ctx.client_ip(), &id).await?,
        ))
    }
}
