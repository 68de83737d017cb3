//! DataLoader keys and batch queries: every relation field loads through here, so a
//! list of N conversations costs one query per relation, not N.
//!
//! A [`Batcher`] is made per request. It loads by id alone: the ids come from
//! relations of objects the requester was already allowed to read, and every write
//! checks that a relation points inside its own workspace.

use std::sync::Arc;

use std::collections::HashMap;
use std::time::Duration;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::domain::Core;
use crate::entity::{
    HandoffStatus, agent, answer_feedback, answer_flag, article, conversation, conversation_tag,
    handoff, handoff_offer, insight_tag, lead, message, team, team_member,
};
use crate::error::AppError;

pub struct Batcher {
    core: Core,
    sees_internal: bool,
}

/// The per-request loader. Its cache lets a list resolver prefetch relations in
/// one go (see `graphql::conversations::prefetch`); it is switched off for
/// mutations, which must read what they just wrote.
pub type Loaders = DataLoader<Batcher, HashMapCache>;

/// The loader of one request, made when a resolver first needs it: many
/// subscriptions never load a relation, and an idle one should cost little.
pub struct LazyLoaders {
    core: Core,
    sees_internal: bool,
    cache: bool,
    loaders: std::sync::OnceLock<Loaders>,
}

impl LazyLoaders {
    /// `cache`: whether loads are shared across the request (queries), or always
    /// fresh (mutations and subscriptions, which read what just changed).
    pub fn new(core: &Core, sees_internal: bool, cache: bool) -> LazyLoaders {
        LazyLoaders {
            core: core.clone(),
            sees_internal,
            cache,
            loaders: std::sync::OnceLock::new(),
        }
    }

    pub fn get(&self) -> &Loaders {
        self.loaders.get_or_init(|| {
            let loaders = for_request(&self.core, self.sees_internal);
            loaders.enable_all_cache(self.cache);
            loaders
        })
    }
}

/// A loader for one request; `sees_internal` says whether internal notes count as
/// the last message.
pub fn for_request(core: &Core, sees_internal: bool) -> Loaders {
    DataLoader::with_cache(
        Batcher {
            core: core.clone(),
            sees_internal,
        },
        tokio::spawn,
        HashMapCache::default(),
    )
    .delay(Duration::from_micros(200))
}

/// A loader by id; with `cached in` a field of [`Core`], rows are served from
/// that per-process cache where fresh, and those read are put into it. Rows are
/// handed out behind an `Arc`: the loader clones a value for every field that asks
/// (the same assignee for each conversation of a page), and a row's strings are
/// not worth copying each time.
macro_rules! by_id {
    ($(#[$doc:meta])* $key:ident => $module:ident $(, cached in $cache:ident)?) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub struct $key(pub String);

        impl Loader<$key> for Batcher {
            type Value = Arc<$module::Model>;
            type Error = AppError;

            async fn load(&self, keys: &[$key]) -> Result<HashMap<$key, Arc<$module::Model>>, AppError> {
                let mut found = HashMap::with_capacity(keys.len());
                let mut missing = Vec::with_capacity(keys.len());
                for key in keys {
                    $(
                        if let Some(row) = self.core.$cache.get(&key.0) {
                            found.insert(key.clone(), Arc::new(row));
                            continue;
                        }
                    )?
                    missing.push(key.0.clone());
                }
                if missing.is_empty() {
                    return Ok(found);
                }
                let rows = $module::Entity::find()
                    .filter($module::Column::Id.is_in(missing))
                    .all(&self.core.db.reader)
                    .await?;
                for row in rows {
                    $( self.core.$cache.put(row.id.clone(), row.clone()); )?
                    found.insert($key(row.id.clone()), Arc::new(row));
                }
                Ok(found)
            }
        }
    };
}

by_id!(
    /// An agent by id (as the token check reads it: at most a second old).
    AgentKey => agent, cached in agents
);
by_id!(
    /// A team by id.
    TeamKey => team, cached in teams
);
by_id!(
    /// A lead by id.
    LeadKey => lead
);
by_id!(
    /// An insight tag by id.
    TagKey => insight_tag
);
by_id!(
    /// A conversation by id.
    ConversationKey => conversation
);
by_id!(
    /// A knowledge article by id.
    ArticleKey => article
);

/// The newest message of a conversation that the requester may see (`None` for a
/// conversation without one, so that is cached too).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LastMessageKey(pub String);

impl Loader<LastMessageKey> for Batcher {
    type Value = Option<Arc<message::Model>>;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[LastMessageKey],
    ) -> Result<HashMap<LastMessageKey, Option<Arc<message::Model>>>, AppError> {
        let ids: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let mut out: HashMap<LastMessageKey, Option<Arc<message::Model>>> =
            keys.iter().map(|k| (k.clone(), None)).collect();
        for row in
            crate::domain::chat::conversations::last_messages(&self.core, &ids, self.sees_internal)
                .await?
        {
            out.insert(
                LastMessageKey(row.conversation_id.clone()),
                Some(Arc::new(row)),
            );
        }
        Ok(out)
    }
}

/// A lead, or a conversation's newest message, as an inbox page read it: only the
/// columns of the selection that asked (named by `graphql::conversations::
/// signature`), so a selection that asks for more never gets it from there.
/// Loaded whole when no page read it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LeadPartKey(pub String, pub Arc<str>);

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LastMessagePartKey(pub String, pub Arc<str>);

impl Loader<LeadPartKey> for Batcher {
    type Value = Arc<lead::Model>;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[LeadPartKey],
    ) -> Result<HashMap<LeadPartKey, Arc<lead::Model>>, AppError> {
        let whole: Vec<LeadKey> = keys.iter().map(|k| LeadKey(k.0.clone())).collect();
        let found = Loader::<LeadKey>::load(self, &whole).await?;
        Ok(keys
            .iter()
            .filter_map(|k| Some((k.clone(), found.get(&LeadKey(k.0.clone()))?.clone())))
            .collect())
    }
}

impl Loader<LastMessagePartKey> for Batcher {
    type Value = Option<Arc<message::Model>>;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[LastMessagePartKey],
    ) -> Result<HashMap<LastMessagePartKey, Option<Arc<message::Model>>>, AppError> {
        let whole: Vec<LastMessageKey> = keys.iter().map(|k| LastMessageKey(k.0.clone())).collect();
        let found = Loader::<LastMessageKey>::load(self, &whole).await?;
        Ok(keys
            .iter()
            .map(|k| {
                let message = found.get(&LastMessageKey(k.0.clone())).cloned().flatten();
                (k.clone(), message)
            })
            .collect())
    }
}

/// The visitor's feedback on an AI answer, by message id (`None` without one).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FeedbackKey(pub String);

impl Loader<FeedbackKey> for Batcher {
    type Value = Option<Arc<answer_feedback::Model>>;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[FeedbackKey],
    ) -> Result<HashMap<FeedbackKey, Option<Arc<answer_feedback::Model>>>, AppError> {
        let ids: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let mut out: HashMap<FeedbackKey, Option<Arc<answer_feedback::Model>>> =
            keys.iter().map(|k| (k.clone(), None)).collect();
        for row in crate::domain::handoff::feedback::feedback_of(&self.core, &ids).await? {
            out.insert(FeedbackKey(row.message_id.clone()), Some(Arc::new(row)));
        }
        Ok(out)
    }
}

/// Agents' flags on an AI answer, by message id, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FlagsKey(pub String);

impl Loader<FlagsKey> for Batcher {
    type Value = Vec<answer_flag::Model>;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[FlagsKey],
    ) -> Result<HashMap<FlagsKey, Vec<answer_flag::Model>>, AppError> {
        let ids: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let rows = crate::domain::handoff::feedback::flags_of(&self.core, &ids).await?;
        Ok(grouped(keys, rows, |row| FlagsKey(row.message_id.clone())))
    }
}

/// The offers of a handoff, by handoff id, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OffersKey(pub String);

impl Loader<OffersKey> for Batcher {
    type Value = Vec<handoff_offer::Model>;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[OffersKey],
    ) -> Result<HashMap<OffersKey, Vec<handoff_offer::Model>>, AppError> {
        let ids: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let rows = crate::domain::handoff::routing::offers_of(&self.core, &ids).await?;
        Ok(grouped(keys, rows, |row| OffersKey(row.handoff_id.clone())))
    }
}

/// `rows` (in their order) under the key each belongs to; every key of `keys` is
/// there, with no rows if none belongs to it.
fn grouped<K, R>(keys: &[K], rows: Vec<R>, key_of: impl Fn(&R) -> K) -> HashMap<K, Vec<R>>
where
    K: Clone + Eq + std::hash::Hash,
{
    let mut out: HashMap<K, Vec<R>> = keys.iter().map(|k| (k.clone(), Vec::new())).collect();
    for row in rows {
        out.entry(key_of(&row)).or_default().push(row);
    }
    out
}

/// Load `keys` now, unless there are none.
pub async fn load_now<K>(
    batcher: &Batcher,
    keys: Vec<K>,
) -> Result<HashMap<K, <Batcher as Loader<K>>::Value>, AppError>
where
    K: Send + Sync + std::hash::Hash + Eq + Clone + 'static,
    Batcher: Loader<K, Error = AppError>,
{
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    batcher.load(&keys).await
}

/// The open handoff of a conversation (`None` when it has none, so that is cached
/// too).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OpenHandoffKey(pub String);

impl Loader<OpenHandoffKey> for Batcher {
    type Value = Option<handoff::Model>;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[OpenHandoffKey],
    ) -> Result<HashMap<OpenHandoffKey, Option<handoff::Model>>, AppError> {
        let mut out: HashMap<OpenHandoffKey, Option<handoff::Model>> =
            keys.iter().map(|k| (k.clone(), None)).collect();
        let select = handoff::Entity::find()
            .filter(handoff::Column::ConversationId.is_in(keys.iter().map(|k| k.0.clone())))
            .filter(handoff::Column::Status.is_in([
                HandoffStatus::Requested,
                HandoffStatus::Offered,
                HandoffStatus::Accepted,
            ]));
        for row in crate::db::json_models(&self.core.db.reader, select).await? {
            out.insert(OpenHandoffKey(row.conversation_id.clone()), Some(row));
        }
        Ok(out)
    }
}

/// A conversation's open handoff, or its applied tags, as an inbox page read them:
/// only the columns of the selection that asked (see [`LeadPartKey`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OpenHandoffPartKey(pub String, pub Arc<str>);

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AppliedTagsPartKey(pub String, pub Arc<str>);

impl Loader<OpenHandoffPartKey> for Batcher {
    type Value = Option<handoff::Model>;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[OpenHandoffPartKey],
    ) -> Result<HashMap<OpenHandoffPartKey, Option<handoff::Model>>, AppError> {
        let whole: Vec<OpenHandoffKey> = keys.iter().map(|k| OpenHandoffKey(k.0.clone())).collect();
        let found = Loader::<OpenHandoffKey>::load(self, &whole).await?;
        Ok(keys
            .iter()
            .map(|k| {
                (
                    k.clone(),
                    found.get(&OpenHandoffKey(k.0.clone())).cloned().flatten(),
                )
            })
            .collect())
    }
}

impl Loader<AppliedTagsPartKey> for Batcher {
    type Value = Vec<Applied>;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[AppliedTagsPartKey],
    ) -> Result<HashMap<AppliedTagsPartKey, Vec<Applied>>, AppError> {
        let whole: Vec<AppliedTagsKey> = keys.iter().map(|k| AppliedTagsKey(k.0.clone())).collect();
        let found = Loader::<AppliedTagsKey>::load(self, &whole).await?;
        Ok(keys
            .iter()
            .map(|k| {
                let applied = found.get(&AppliedTagsKey(k.0.clone())).cloned();
                (k.clone(), applied.unwrap_or_default())
            })
            .collect())
    }
}

/// The tags currently applied to a conversation, each with its tag.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AppliedTagsKey(pub String);

pub type Applied = (conversation_tag::Model, Arc<insight_tag::Model>);

impl Loader<AppliedTagsKey> for Batcher {
    type Value = Vec<Applied>;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[AppliedTagsKey],
    ) -> Result<HashMap<AppliedTagsKey, Vec<Applied>>, AppError> {
        let ids: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let mut out: HashMap<AppliedTagsKey, Vec<Applied>> =
            keys.iter().map(|k| (k.clone(), Vec::new())).collect();
        for row in crate::domain::knowledge::tags::applied(&self.core, &ids).await? {
            if let Some(list) = out.get_mut(&AppliedTagsKey(row.0.conversation_id.clone())) {
                list.push(row);
            }
        }
        Ok(out)
    }
}

/// The teams an agent belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TeamsOfAgentKey(pub String);

/// The agents in a team.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MembersOfTeamKey(pub String);

impl Batcher {
    async fn memberships(
        &self,
        column: team_member::Column,
        ids: Vec<String>,
    ) -> Result<Vec<team_member::Model>, AppError> {
        Ok(team_member::Entity::find()
            .filter(column.is_in(ids))
            .all(&self.core.db.reader)
            .await?)
    }
}

impl Loader<TeamsOfAgentKey> for Batcher {
    type Value = Vec<team::Model>;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[TeamsOfAgentKey],
    ) -> Result<HashMap<TeamsOfAgentKey, Vec<team::Model>>, AppError> {
        let links = self
            .memberships(
                team_member::Column::AgentId,
                keys.iter().map(|k| k.0.clone()).collect(),
            )
            .await?;
        let teams: HashMap<String, team::Model> = team::Entity::find()
            .filter(team::Column::Id.is_in(links.iter().map(|l| l.team_id.clone())))
            .all(&self.core.db.reader)
            .await?
            .into_iter()
            .map(|t| (t.id.clone(), t))
            .collect();
        let mut out: HashMap<TeamsOfAgentKey, Vec<team::Model>> =
            keys.iter().map(|k| (k.clone(), Vec::new())).collect();
        for link in links {
            if let (Some(list), Some(team)) = (
                out.get_mut(&TeamsOfAgentKey(link.agent_id)),
                teams.get(&link.team_id),
            ) {
                list.push(team.clone());
            }
        }
        Ok(out)
    }
}

impl Loader<MembersOfTeamKey> for Batcher {
    type Value = Vec<agent::Model>;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[MembersOfTeamKey],
    ) -> Result<HashMap<MembersOfTeamKey, Vec<agent::Model>>, AppError> {
        let links = self
            .memberships(
                team_member::Column::TeamId,
                keys.iter().map(|k| k.0.clone()).collect(),
            )
            .await?;
        let agents: HashMap<String, agent::Model> = agent::Entity::find()
            .filter(agent::Column::Id.is_in(links.iter().map(|l| l.agent_id.clone())))
            .all(&self.core.db.reader)
            .await?
            .into_iter()
            .map(|a| (a.id.clone(), a))
            .collect();
        let mut out: HashMap<MembersOfTeamKey, Vec<agent::Model>> =
            keys.iter().map(|k| (k.clone(), Vec::new())).collect();
        for link in links {
            if let (Some(list), Some(agent)) = (
                out.get_mut(&MembersOfTeamKey(link.team_id)),
                agents.get(&link.agent_id),
            ) {
                list.push(agent.clone());
            }
        }
        Ok(out)
    }
}
