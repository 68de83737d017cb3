//! What every request shares: the database, token keys, the event bus, the config.

use std::sync::Arc;

use crate::auth::Tokens;
use crate::config::Config;
use crate::db::Db;
use crate::error::AppResult;
use crate::events::EventBus;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub db: Db,
    pub tokens: Tokens,
    pub events: EventBus,
    pub config: Config,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Connect to the configured database, migrate it and load the signing secret.
    pub async fn open(config: Config) -> AppResult<AppState> {
        let db = Db::connect(&config.database_url(), config.db_pool_size).await?;
        let secret = Tokens::load_secret(&db, config.jwt_secret.as_deref()).await?;
        let tokens = Tokens::new(&secret, config.agent_token_ttl, config.visitor_token_ttl);
        Ok(AppState(Arc::new(Inner {
            db,
            tokens,
            events: EventBus::new(4096),
            config,
        })))
    }
}
