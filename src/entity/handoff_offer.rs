use sea_orm::entity::prelude::*;

/// One agent offered one handoff, and how the offer ended: `ACCEPTED`,
/// `DECLINED`, `EXPIRED` or `WITHDRAWN` (`None` while it stands). An agent is
/// offered a handoff once.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "handoff_offers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub handoff_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub agent_id: String,
    pub offered_at: i64,
    pub outcome: Option<OfferOutcome>,
    pub ended_at: Option<i64>,
}

/// How an offer ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, async_graphql::Enum)]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum OfferOutcome {
    /// The agent accepted it.
    #[sea_orm(string_value = "ACCEPTED")]
    Accepted,
    /// The agent declined it (`declineHandoff`).
    #[sea_orm(string_value = "DECLINED")]
    Declined,
    /// The team's `offerTimeoutSeconds` passed without an answer.
    #[sea_orm(string_value = "EXPIRED")]
    Expired,
    /// The handoff left the offer another way: resolved, handed back to the AI or
    /// transferred, or the agent was deactivated.
    #[sea_orm(string_value = "WITHDRAWN")]
    Withdrawn,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
